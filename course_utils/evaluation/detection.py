"""Detection scores: COCO-style average precision written by hand (the lab-05 reference), and a thin
wrapper around torchmetrics' ``MeanAveragePrecision`` for the labs.

COCO's recipe (pycocotools ``COCOeval``, box AP over all areas), followed step by step:

1. per image and category: detections by decreasing score (a *stable* sort: equal scores keep their
   input order), at most ``max_dets``; IoU with the ground truth computed in float64 from XYWH boxes;
2. for each IoU threshold ``t`` in ``.50:.05:.95``: each detection in turn takes the unmatched ground
   truth box it overlaps most with ``IoU >= t`` (ties: the later box), else it is a false positive;
3. per category: the detections of all images ranked by score (stable, images in order), precision
   and recall along the list, precision made monotone, read at 101 recall points ``0, .01, ..., 1``
   (0 beyond the last recall reached); the IoU thresholds and recall points are pycocotools' float64
   ``np.linspace`` grids (torchmetrics passes float32 ones: :func:`coco_map_torchmetrics`);
4. AP is the mean over thresholds, recall points and the categories that have ground truth
   (categories without any are left out: their false positives cost nothing). ``-1`` if none has.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from course_utils import validation

# pycocotools' own grids (COCOeval's Params, float64): the definition of COCO AP.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)
# torchmetrics hands pycocotools float32 grids (torch.linspace(...).tolist()): a recall or an IoU exactly on a
# grid point may then read differently (recall 3/5 is below torch.linspace(0, 1, 101)[60] = 0.60000002; an
# IoU of exactly 0.55 is below float32(0.55)). Both are COCO AP as the field computes it.
TORCHMETRICS_IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10).double().numpy()
TORCHMETRICS_RECALL_POINTS = torch.linspace(0.0, 1.0, 101).double().numpy()


def average_precision(matched: torch.Tensor, num_gt: int) -> float:
    """COCO 101-point AP of one ranked list: ``matched`` ``D`` bool (true positive or not), in rank order.

    Precision ``p_k = TP_k / k`` and recall ``r_k = TP_k / num_gt`` after ``k`` detections; ``p`` made
    monotone (``p_k = max_{j >= k} p_j``); AP = mean over ``r* in {0, .01, ..., 1}`` of ``p`` at the first
    rank with ``r_k >= r*`` (0 when the list never gets there). ``num_gt = 0`` gives -1 (undefined).
    """
    validation.tensor("matched", matched, ndim=1)
    num_gt = validation.integer("num_gt", num_gt, minimum=0)
    return _average_precision(matched, num_gt, RECALL_POINTS)


def _average_precision(matched: torch.Tensor, num_gt: int, recall_points: np.ndarray) -> float:
    if num_gt == 0:
        return -1.0
    tp = np.cumsum(matched.cpu().numpy().astype(bool)).astype(float)
    fp = np.cumsum(~matched.cpu().numpy().astype(bool)).astype(float)
    if len(tp) == 0:
        return 0.0
    recall = tp / num_gt
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, recall_points, side="left")
    return float(np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0).mean())


def _coco_iou(dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``D x G`` IoU of XYWH float64 boxes, as pycocotools' ``bbIou`` (non-crowd)."""
    w = np.minimum(dt[:, None, 0] + dt[:, None, 2],
                   gt[None, :, 0] + gt[None, :, 2]) - np.maximum(dt[:, None, 0], gt[None, :, 0])
    h = np.minimum(dt[:, None, 1] + dt[:, None, 3],
                   gt[None, :, 1] + gt[None, :, 3]) - np.maximum(dt[:, None, 1], gt[None, :, 1])
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


def _check(preds: Sequence[dict], targets: Sequence[dict], boxes: bool = True) -> None:
    """One dict per image with ``labels`` (and ``scores`` for ``preds``) and, where ``boxes``, ``boxes``."""
    if not isinstance(preds, Sequence) or not isinstance(targets, Sequence) or len(preds) != len(targets):
        raise ValueError("preds and targets must be lists of dicts, one per image, of the same length")
    for i, (p, t) in enumerate(zip(preds, targets)):
        for name, d, all_keys in (("preds", p, ("boxes", "scores", "labels")), ("targets", t, ("boxes", "labels"))):
            keys = all_keys if boxes else tuple(k for k in all_keys if k != "boxes")
            if not isinstance(d, dict) or any(k not in d for k in keys):
                raise ValueError(f"{name}[{i}] must be a dict with {', '.join(keys)}")
            validation.tensor(f"{name}[{i}]['labels']", d["labels"], ndim=1, dtypes="int")
            if boxes:
                validation.boxes(f"{name}[{i}]['boxes']", d["boxes"])
            sizes = {len(d[k]) for k in keys}
            if len(sizes) != 1:
                raise ValueError(f"{name}[{i}]: {', '.join(keys)} must have the same length")


def coco_map(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]],
             max_dets: int = 100) -> dict[str, float]:
    """COCO box AP of detections ``preds`` against ``targets`` (one dict per image, as :func:`box_map`).

    Returns ``{"map": AP@[.50:.95], "map_50": AP@.50, "map_75": AP@.75}``, each the mean over the
    categories that have ground truth (-1 if none). Equals pycocotools' ``COCOeval`` (area "all",
    ``max_dets`` per image and category), and torchmetrics' ``MeanAveragePrecision`` up to its float32
    grids (see :data:`TORCHMETRICS_RECALL_POINTS` and :func:`coco_map_torchmetrics`).
    """
    return _coco_map(preds, targets, max_dets, IOU_THRESHOLDS, RECALL_POINTS)


def coco_map_torchmetrics(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]],
                          max_dets: int = 100) -> dict[str, float]:
    """:func:`coco_map` on torchmetrics' float32 grids: what ``MeanAveragePrecision`` gives (to 1e-6)."""
    return _coco_map(preds, targets, max_dets, TORCHMETRICS_IOU_THRESHOLDS, TORCHMETRICS_RECALL_POINTS)


def _coco_map(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]], max_dets: int,
              iou_thresholds: np.ndarray, recall_points: np.ndarray) -> dict[str, float]:
    _check(preds, targets)
    max_dets = validation.integer("max_dets", max_dets, minimum=1)
    ious = [_coco_iou(_xywh(p["boxes"]), _xywh(t["boxes"])) for p, t in zip(preds, targets)]
    return _map_from_ious(preds, targets, ious, max_dets, iou_thresholds, recall_points)


def coco_map_from_ious(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]],
                       ious: Sequence[torch.Tensor], max_dets: int = 100) -> dict[str, float]:
    """COCO AP as :func:`coco_map`, but from given IoUs, whatever the detections are (boxes, masks, ...).

    ``preds[i]``: ``scores`` ``D_i``, ``labels`` ``D_i``; ``targets[i]``: ``labels`` ``G_i`` (``boxes`` are not
    needed); ``ious[i]``: ``D_i x G_i``, the IoU of image ``i``'s detections (in ``preds[i]``'s order) with its
    ground-truth objects. With mask IoUs (``mask_iou(preds[i]["masks"], targets[i]["masks"])``) this is COCO's
    mask AP as torchmetrics' ``MeanAveragePrecision(iou_type="segm")`` computes it, which lab 07 reports: on
    torchmetrics' float32 grids (:data:`TORCHMETRICS_IOU_THRESHOLDS`), not pycocotools' float64 ones as
    :func:`coco_map`. Mask IoUs are ratios of pixel counts and often fall exactly on a threshold, where the
    two differ (11/20 is pycocotools' 0.55, below torchmetrics' float32 0.55000001). pycocotools compares
    float64 IoUs with the thresholds; float32 IoUs give the same AP unless an IoU equals a threshold to the
    last bit.
    """
    _check(preds, targets, boxes=False)
    max_dets = validation.integer("max_dets", max_dets, minimum=1)
    if not isinstance(ious, Sequence) or len(ious) != len(preds):
        raise ValueError(f"ious must be a list of one D_i x G_i tensor per image ({len(preds)} images), got "
                         f"{type(ious).__name__}" + (f" of {len(ious)}" if isinstance(ious, Sequence) else ""))
    arrays = []
    for i, (iou, p, t) in enumerate(zip(ious, preds, targets)):
        validation.tensor(f"ious[{i}]", iou, ndim=2)
        if tuple(iou.shape) != (len(p["labels"]), len(t["labels"])):
            raise ValueError(f"ious[{i}] must be D x G = {(len(p['labels']), len(t['labels']))} (detections x ground "
                             f"truth of image {i}), got {tuple(iou.shape)}")
        arrays.append(iou.detach().cpu().double().numpy())
    return _map_from_ious(preds, targets, arrays, max_dets, TORCHMETRICS_IOU_THRESHOLDS, TORCHMETRICS_RECALL_POINTS)


def _map_from_ious(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]],
                   ious: Sequence[np.ndarray], max_dets: int, iou_thresholds: np.ndarray,
                   recall_points: np.ndarray) -> dict[str, float]:
    """COCO's recipe (steps 1-4 of the module's docstring) with ``ious[i]`` ``D_i x G_i`` (float64) per image."""
    categories = sorted({int(c) for d in [*preds, *targets] for c in d["labels"].tolist()})
    per_category = []                                     # (scores, matched T x D, num_gt) per category
    for c in categories:
        scores, matched, num_gt = [], [], 0
        for p, t, iou in zip(preds, targets, ious):
            dt_index = np.flatnonzero((p["labels"] == c).cpu().numpy())
            gt_index = np.flatnonzero((t["labels"] == c).cpu().numpy())
            s = p["scores"].detach().cpu().double().numpy()[dt_index]
            order = np.argsort(-s, kind="mergesort")[:max_dets]
            image_ious = iou[dt_index[order]][:, gt_index]
            scores.append(s[order])
            matched.append(np.stack([_match(image_ious, th) for th in iou_thresholds]))
            num_gt += len(gt_index)
        per_category.append((np.concatenate(scores), np.concatenate(matched, axis=1), num_gt))
    results = {}
    for key, which in (("map", slice(None)), ("map_50", slice(0, 1)), ("map_75", slice(5, 6))):
        aps = []
        for cat_scores, cat_matched, num_gt in per_category:
            if num_gt == 0:
                continue
            order = np.argsort(-cat_scores, kind="mergesort")
            aps += [_average_precision(torch.from_numpy(m[order]), num_gt, recall_points) for m in cat_matched[which]]
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
