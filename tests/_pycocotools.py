"""Test helper: COCO box AP by pycocotools' own COCOeval, the definition the course's AP is held to."""

from __future__ import annotations

import contextlib
import io

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def pycocotools_map(preds, targets):
    """COCOeval with its default parameters (float64 grids, maxDets 100), boxes as the course hands them."""
    def xywh(b):
        return torch.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1).tolist()

    images = [{"id": i + 1} for i in range(len(targets))]
    labels = sorted({int(c) for d in [*preds, *targets] for c in d["labels"].tolist()})
    gts, dts = [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        for box, label in zip(xywh(t["boxes"].float()), t["labels"].tolist()):
            gts.append({"id": len(gts) + 1, "image_id": i + 1, "category_id": label, "bbox": box,
                        "area": box[2] * box[3], "iscrowd": 0})
        for box, label, score in zip(xywh(p["boxes"].float()), p["labels"].tolist(), p["scores"].tolist()):
            dts.append({"image_id": i + 1, "category_id": label, "bbox": box, "score": score})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": gts, "categories": [{"id": c} for c in labels]}
        gt.createIndex()
        dt = gt.loadRes(dts) if dts else COCO()
        if not dts:
            dt.dataset = {"images": images, "annotations": [], "categories": gt.dataset["categories"]}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, -1]          # T x R x K, area "all", maxDets 100

    def mean(p):
        return float(p[p > -1].mean()) if (p > -1).any() else -1.0

    return {"map": mean(precision), "map_50": mean(precision[0]), "map_75": mean(precision[5])}
