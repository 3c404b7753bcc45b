"""Detection scores: COCO-style average precision written by hand (the lab-05 reference), and a thin
wrapper around torchmetrics' ``MeanAveragePrecision`` for the labs.

COCO's recipe (pycocotools ``COCOeval``, box AP over all areas), followed step by step:

1. per image and category: detections by decreasing score (a *stable* sort: equal scores keep their
   input order), at most ``max_dets``; IoU with the ground truth computed in float64 from XYWH boxes;
2. for each IoU threshold ``t`` in ``.50:.05:.95``: each detection in turn takes the unmatched ground
   truth box it overlaps most with ``IoU >= t`` (ties: the later box), else it is a false positive;
3. per category: the detections of all images ranked by score (stable, images in order), precision
   and recall along the list, precision made monotone, read at 101 recall points ``0, .01, ..., 1``
   (0 beyond the last recall reached);
4. AP is the mean over thresholds, recall points and the categories that have ground truth
   (categories without any are left out: their false positives cost nothing). ``-1`` if none has.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from course_utils import validation

# torchmetrics hands pycocotools float32 thresholds (torch.linspace(...).tolist()): an IoU of exactly
# 0.55 is then below float32(0.55) = 0.55000001. The same values here, so that such ties agree.
IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10).double().numpy()
RECALL_POINTS = torch.linspace(0.0, 1.0, 101).double().numpy()


def average_precision(matched: torch.Tensor, num_gt: int) -> float:
    """COCO 101-point AP of one ranked list: ``matched`` ``D`` bool (true positive or not), in rank order.

    Precision ``p_k = TP_k / k`` and recall ``r_k = TP_k / num_gt`` after ``k`` detections; ``p`` made
    monotone (``p_k = max_{j >= k} p_j``); AP = mean over ``r* in {0, .01, ..., 1}`` of ``p`` at the first
    rank with ``r_k >= r*`` (0 when the list never gets there). ``num_gt = 0`` gives -1 (undefined).
    """
    validation.tensor("matched", matched, ndim=1)
    num_gt = validation.integer("num_gt", num_gt, minimum=0)
    if num_gt == 0:
        return -1.0
    tp = np.cumsum(matched.cpu().numpy().astype(bool)).astype(float)
    fp = np.cumsum(~matched.cpu().numpy().astype(bool)).astype(float)
    if len(tp) == 0:
        return 0.0
    recall = tp / num_gt
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    return float(np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0).mean())


def _coco_iou(dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``D x G`` IoU of XYWH float64 boxes, as pycocotools' ``bbIou`` (non-crowd)."""
    w = np.minimum(dt[:, None, 0] + dt[:, None, 2], gt[None, :, 0] + gt[None, :, 2]) - np.maximum(dt[:, None, 0], gt[None, :, 0])
    h = np.minimum(dt[:, None, 1] + dt[:, None, 3], gt[None, :, 1] + gt[None, :, 3]) - np.maximum(dt[:, None, 1], gt[None, :, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    union = (dt[:, 2] * dt[:, 3])[:, None] + (gt[:, 2] * gt[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _match(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy matching of score-sorted detections (rows) to ground truth (columns): bool ``D``."""
    matched = np.zeros(ious.shape[0], dtype=bool)
    taken = np.zeros(ious.shape[1], dtype=bool)
    for d in range(ious.shape[0]):
        best, m = min(threshold, 1 - 1e-10), -1
        for g in range(ious.shape[1]):
            if taken[g] or ious[d, g] < best:
                continue
            best, m = ious[d, g], g
        if m >= 0:
            matched[d], taken[m] = True, True
    return matched


def _xywh(boxes: torch.Tensor) -> np.ndarray:
    b = boxes.detach().cpu().float()
    return torch.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1).double().numpy()


def _check(preds: Sequence[dict], targets: Sequence[dict]) -> None:
    if not isinstance(preds, Sequence) or not isinstance(targets, Sequence) or len(preds) != len(targets):
        raise ValueError("preds and targets must be lists of dicts, one per image, of the same length")
    for i, (p, t) in enumerate(zip(preds, targets)):
        for name, d, keys in (("preds", p, ("boxes", "scores", "labels")), ("targets", t, ("boxes", "labels"))):
            if not isinstance(d, dict) or any(k not in d for k in keys):
                raise ValueError(f"{name}[{i}] must be a dict with {', '.join(keys)}")
            validation.boxes(f"{name}[{i}]['boxes']", d["boxes"])
            validation.tensor(f"{name}[{i}]['labels']", d["labels"], ndim=1, dtypes="int")
            if len(d["labels"]) != len(d["boxes"]) or (name == "preds" and len(d["scores"]) != len(d["boxes"])):
                raise ValueError(f"{name}[{i}]: boxes, labels (and scores) must have the same length")


def coco_map(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]],
             max_dets: int = 100) -> dict[str, float]:
    """COCO box AP of detections ``preds`` against ``targets`` (one dict per image, as :func:`box_map`).

    Returns ``{"map": AP@[.50:.95], "map_50": AP@.50, "map_75": AP@.75}``, each the mean over the
    categories that have ground truth (-1 if none). Equals torchmetrics' ``MeanAveragePrecision``
    (``backend="pycocotools"``, area "all", ``max_dets`` per image and category).
    """
    _check(preds, targets)
    max_dets = validation.integer("max_dets", max_dets, minimum=1)
    categories = sorted({int(c) for d in [*preds, *targets] for c in d["labels"].tolist()})
    per_category = []                                     # (scores, matched T x D, num_gt) per category
    for c in categories:
        scores, matched, num_gt = [], [], 0
        for p, t in zip(preds, targets):
            dt_mask, gt_mask = p["labels"] == c, t["labels"] == c
            s = p["scores"][dt_mask].detach().cpu().double().numpy()
            order = np.argsort(-s, kind="mergesort")[:max_dets]
            dt, gt = _xywh(p["boxes"][dt_mask])[order], _xywh(t["boxes"][gt_mask])
            ious = _coco_iou(dt, gt)
            scores.append(s[order])
            matched.append(np.stack([_match(ious, th) for th in IOU_THRESHOLDS]))
            num_gt += len(gt)
        per_category.append((np.concatenate(scores), np.concatenate(matched, axis=1), num_gt))
    results = {}
    for key, which in (("map", slice(None)), ("map_50", slice(0, 1)), ("map_75", slice(5, 6))):
        aps = []
        for scores, matched, num_gt in per_category:
            if num_gt == 0:
                continue
            order = np.argsort(-scores, kind="mergesort")
            aps += [average_precision(torch.from_numpy(m[order]), num_gt) for m in matched[which]]
        results[key] = float(np.mean(aps)) if aps else -1.0
    return results


def box_map(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]]) -> dict[str, float]:
    """COCO box mAP (IoU .50:.95) and mAP50 by torchmetrics' ``MeanAveragePrecision`` (pycocotools).

    ``preds[i]``: ``boxes`` ``N x 4`` XYXY, ``scores`` ``N``, ``labels`` ``N`` int64; ``targets[i]``:
    ``boxes`` ``M x 4``, ``labels`` ``M``. Returns ``{"map": float, "map_50": float}``.
    """
    from torchmetrics.detection import MeanAveragePrecision

    _check(preds, targets)
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    metric.update([{k: p[k].detach().cpu() for k in ("boxes", "scores", "labels")} for p in preds],
                  [{k: t[k].detach().cpu() for k in ("boxes", "labels")} for t in targets])
    out = metric.compute()
    return {"map": float(out["map"]), "map_50": float(out["map_50"])}


def instance_map(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]],
                 threshold: float = 0.5) -> dict[str, float]:
    """COCO box and mask mAP of instance segmentations by torchmetrics' ``MeanAveragePrecision``
    (``iou_type=("bbox", "segm")``, pycocotools).

    ``preds[i]``: ``boxes``, ``scores``, ``labels`` and ``masks`` (``N x H x W`` bool, or a Mask R-CNN's
    ``N x 1 x H x W`` probabilities, kept where ``> threshold``); ``targets[i]``: ``boxes``, ``labels``,
    ``masks`` ``M x H x W``. Returns ``{"map", "map_50"}`` (boxes) and ``{"mask_map", "mask_map_50"}``.
    """
    from course_utils.models.detection.mask_rcnn import instance_masks

    _check(preds, targets)
    preds, targets = instance_masks(preds, threshold), instance_masks(targets, 0.5)
    for i, (p, t) in enumerate(zip(preds, targets)):
        if len(p["masks"]) != len(p["boxes"]) or len(t["masks"]) != len(t["boxes"]):
            raise ValueError(f"image {i}: one mask per box expected, got {len(p['masks'])} masks for "
                             f"{len(p['boxes'])} predicted boxes, {len(t['masks'])} for {len(t['boxes'])} true ones")
        if p["masks"].shape[1:] != t["masks"].shape[1:]:
            raise ValueError(f"image {i}: predicted masks are {tuple(p['masks'].shape[1:])}, true ones "
                             f"{tuple(t['masks'].shape[1:])}: paste the predictions into the image first")
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(box_format="xyxy", iou_type=("bbox", "segm"), backend="pycocotools")
    metric.update([{k: p[k].detach().cpu() for k in ("boxes", "scores", "labels", "masks")} for p in preds],
                  [{k: t[k].detach().cpu() for k in ("boxes", "labels", "masks")} for t in targets])
    out = metric.compute()
    return {"map": float(out["bbox_map"]), "map_50": float(out["bbox_map_50"]),
            "mask_map": float(out["segm_map"]), "mask_map_50": float(out["segm_map_50"])}
