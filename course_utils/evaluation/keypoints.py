"""Keypoint scores: COCO's object keypoint similarity (OKS) AP, by pycocotools' ``COCOeval``.

OKS plays the part IoU plays for boxes: between a detection's keypoints and a ground truth's,

    OKS = mean over the labelled joints j of exp(-d_j^2 / (2 s^2 k_j^2)),   k_j = 2 sigma_j,

with ``d_j`` the distance in pixels, ``s^2`` the ground truth's area (COCO: its segment's area) and
``sigma_j`` a per-joint tolerance (COCO measured its 17 from how far human annotators disagree: 0.025 for
the eyes to 0.107 for the hips; pycocotools' ``Params.kpt_oks_sigmas``). AP is then COCO's AP with OKS
in place of IoU (thresholds .50:.05:.95).

For the synthetic figures (:mod:`course_utils.data.figures`), drawn with exact joints, the course uses
one ``sigma = 0.1`` for every joint (:data:`FIGURE_SIGMA`) and the figure's mask area: a joint 10 %
of sqrt(area) off scores exp(-1/8) = 0.88.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
import torch

from course_utils import validation

FIGURE_SIGMA = 0.1


def _flat(points: torch.Tensor) -> list[float]:
    return [round(float(v), 3) for v in points.reshape(-1).tolist()]


def keypoint_map(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]],
                 sigmas: float | Sequence[float] = FIGURE_SIGMA) -> dict[str, float]:
    """COCO keypoint AP (OKS .50:.95) and AP at OKS .50 and .75 of one-class keypoint detections.

    ``preds[i]``: ``keypoints`` ``N x J x 3`` (x, y, anything) and ``scores`` ``N`` (a KeypointRCNN's output);
    ``targets[i]``: ``keypoints`` ``M x J x 3`` with COCO's visibility (0: not labelled), ``masks``
    ``M x H x W`` (their sums are the areas) or ``area`` ``M``, and ``boxes`` ``M x 4`` XYXY.
    ``sigmas``: one per joint, or one for all. At most 20 detections per image count (COCO's keypoint
    setting, ``Params.maxDets``). Returns ``{"map", "map_50", "map_75"}`` (-1 with no labelled joint).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not isinstance(preds, Sequence) or not isinstance(targets, Sequence) or len(preds) != len(targets):
        raise ValueError("preds and targets must be lists of dicts, one per image, of the same length")
    joints = None
    images: list[dict] = []
    gts: list[dict] = []
    dts: list[dict] = []
    for i, (p, t) in enumerate(zip(preds, targets)):
        for name, d, keys in (("preds", p, ("keypoints", "scores")), ("targets", t, ("keypoints", "boxes"))):
            if not isinstance(d, dict) or any(k not in d for k in keys):
                raise ValueError(f"{name}[{i}] must be a dict with {', '.join(keys)}")
            validation.tensor(f"{name}[{i}]['keypoints']", d["keypoints"], ndim=3)
            if d["keypoints"].shape[-1] != 3 or (joints is not None and d["keypoints"].shape[1] != joints):
                raise ValueError(f"{name}[{i}]['keypoints'] must be N x J x 3 with the same J everywhere, got shape "
                                 f"{tuple(d['keypoints'].shape)}")
            joints = d["keypoints"].shape[1]
        if "area" in t:
            areas = t["area"].float()
        elif "masks" in t:
            areas = t["masks"].flatten(1).sum(1).float()
        else:
            raise ValueError(f"targets[{i}] needs 'masks' or 'area' (the OKS scale is the object's area)")
        images.append({"id": i + 1})
        for box, points, area in zip(t["boxes"].tolist(), t["keypoints"].cpu(), areas.tolist()):
            gts.append({"id": len(gts) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "area": area,
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "keypoints": _flat(points),
                        "num_keypoints": int((points[:, 2] > 0).sum())})
        for points, score in zip(p["keypoints"].detach().cpu(), p["scores"].detach().cpu().tolist()):
            points = torch.cat([points[:, :2], torch.ones(len(points), 1)], 1)
            dts.append({"image_id": i + 1, "category_id": 1, "keypoints": _flat(points), "score": float(score)})
    if not any(g["num_keypoints"] for g in gts):
        return {"map": -1.0, "map_50": -1.0, "map_75": -1.0}
    if not dts:
        return {"map": 0.0, "map_50": 0.0, "map_75": 0.0}
    assert joints is not None  # set by the first image (gts is not empty here)
    sig = np.full(joints, float(sigmas)) if isinstance(sigmas, (int, float)) else np.asarray(sigmas, dtype=float)
    if sig.shape != (joints,) or (sig <= 0).any():
        raise ValueError(f"sigmas must be one positive number or one per joint ({joints}), got {sigmas!r}")
    with contextlib.redirect_stdout(io.StringIO()):                        # pycocotools prints progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": gts, "categories": [{"id": 1, "name": "object"}]}
        truth.createIndex()
        evaluator = COCOeval(truth, truth.loadRes(dts), iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = sig
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"map": float(evaluator.stats[0]), "map_50": float(evaluator.stats[1]), "map_75": float(evaluator.stats[2])}


__all__ = ["FIGURE_SIGMA", "keypoint_map"]
