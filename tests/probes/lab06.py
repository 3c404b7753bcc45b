"""Lab 06 (YOLO): correct implementations written another way than the course's."""

from __future__ import annotations

import torch
import torchvision
from mutants import Collection

from course_utils.ops import nms as _nms

PROBES = Collection()


def _size(image_size):
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


# ---- 06.encode_targets -----------------------------------------------------------------------
@PROBES.add("06.encode_targets", "a Python loop with Python floats (the lab's solution)")
def encode_loop(boxes, labels, grid, num_classes, image_size):
    h, w = _size(image_size)
    target = torch.zeros(grid, grid, 5 + num_classes)
    for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist()):
        u, v = (x1 + x2) / 2 * grid / w, (y1 + y2) / 2 * grid / h
        col, row = min(int(u), grid - 1), min(int(v), grid - 1)
        if target[row, col, 4] == 0:
            target[row, col, :5] = torch.tensor([u - col, v - row, (x2 - x1) / w, (y2 - y1) / h, 1.0])
            target[row, col, 5 + label] = 1.0
    return target


@PROBES.add("06.encode_targets", "vectorised: the first object of each cell found with scatter_reduce(amin)")
def encode_vectorised(boxes, labels, grid, num_classes, image_size):
    h, w = _size(image_size)
    b = boxes.double()
    u, v = (b[:, 0] + b[:, 2]) / 2 * grid / w, (b[:, 1] + b[:, 3]) / 2 * grid / h
    col, row = u.floor().long().clamp(max=grid - 1), v.floor().long().clamp(max=grid - 1)
    cell = row * grid + col
    order = torch.arange(len(b))
    first = torch.full((grid * grid,), len(b)).scatter_reduce(0, cell, order, "amin")
    keep = first[cell] == order
    rows = torch.stack([u - col, v - row, (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h,
                        torch.ones(len(b)).double()], 1)
    target = torch.zeros(grid * grid, 5 + num_classes, dtype=torch.float64)
    target[cell[keep], :5] = rows[keep]
    target[cell[keep], 5 + labels[keep]] = 1.0
    return target.reshape(grid, grid, 5 + num_classes).float()


# ---- 06.yolo_loss ----------------------------------------------------------------------------
def _root(t):
    return torch.sign(t) * torch.sqrt(t.abs() + 1e-6)


@PROBES.add("06.yolo_loss", "loops over the images, cells and predictors; the IoU with Python floats")
def loss_loops(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    n, s = pred.shape[:2]
    c = target.shape[-1] - 5
    b = (pred.shape[-1] - c) // 5
    total = pred.new_zeros(())
    for i in range(n):
        for row in range(s):
            for col in range(s):
                cell, truth = pred[i, row, col], target[i, row, col]
                if truth[4] <= 0:
                    for k in range(b):
                        total = total + lambda_noobj * cell[5 * k + 4] ** 2
                    continue
                tx, ty, tw, th = truth[:4].tolist()
                tbox = ((col + tx) / s - tw / 2, (row + ty) / s - th / 2,
                        (col + tx) / s + tw / 2, (row + ty) / s + th / 2)
                ious = []
                for k in range(b):
                    x, y, pw, ph = cell[5 * k:5 * k + 4].tolist()
                    pw, ph = max(pw, 0.0), max(ph, 0.0)
                    pbox = ((col + x) / s - pw / 2, (row + y) / s - ph / 2,
                            (col + x) / s + pw / 2, (row + y) / s + ph / 2)
                    iw = max(min(pbox[2], tbox[2]) - max(pbox[0], tbox[0]), 0.0)
                    ih = max(min(pbox[3], tbox[3]) - max(pbox[1], tbox[1]), 0.0)
                    union = pw * ph + tw * th - iw * ih
                    ious.append(iw * ih / union if union > 0 else 0.0)
                best = max(range(b), key=lambda k: (ious[k], -k))          # the first of equal IoUs
                for k in range(b):
                    box = cell[5 * k:5 * k + 5]
                    if k != best:
                        total = total + lambda_noobj * box[4] ** 2
                        continue
                    total = total + lambda_coord * ((box[0] - truth[0]) ** 2 + (box[1] - truth[1]) ** 2
                                                    + (_root(box[2]) - _root(truth[2])) ** 2
                                                    + (_root(box[3]) - _root(truth[3])) ** 2)
                    total = total + (box[4] - ious[k]) ** 2
                total = total + ((cell[5 * b:] - truth[5:]) ** 2).sum()
    return total / n


@PROBES.add("06.yolo_loss", "float64 inside (vectorised), cast back to float32")
def loss_float64(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    p, t = pred.double(), target.double()
    n, s = p.shape[:2]
    c = t.shape[-1] - 5
    b = (p.shape[-1] - c) // 5
    boxes = p[..., :5 * b].reshape(n, s, s, b, 5)
    has_object = t[..., 4] > 0
    grid = torch.arange(s, dtype=torch.float64)

    def corners(xywh):
        cx, cy = (grid[None, None, :, None] + xywh[..., 0]) / s, (grid[None, :, None, None] + xywh[..., 1]) / s
        w, h = xywh[..., 2].clamp(min=0), xywh[..., 3].clamp(min=0)
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)

    with torch.no_grad():
        pb, tb = corners(boxes[..., :4]), corners(t[..., None, :4])
        wh = (torch.minimum(pb[..., 2:], tb[..., 2:]) - torch.maximum(pb[..., :2], tb[..., :2])).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        union = ((pb[..., 2] - pb[..., 0]) * (pb[..., 3] - pb[..., 1])
                 + (tb[..., 2] - tb[..., 0]) * (tb[..., 3] - tb[..., 1]) - inter)
        safe = union.where(union > 0, torch.ones_like(union))
        iou = torch.where(union > 0, inter / safe, 0.0) * has_object[..., None]
    mask = torch.nn.functional.one_hot(iou.argmax(-1), b).bool() & has_object[..., None]
    chosen, truth = boxes[mask], t[has_object]
    coord = ((chosen[:, :2] - truth[:, :2]) ** 2).sum() + ((_root(chosen[:, 2:4]) - _root(truth[:, 2:4])) ** 2).sum()
    loss = (lambda_coord * coord + ((chosen[:, 4] - iou[mask]) ** 2).sum()
            + lambda_noobj * (boxes[..., 4][~mask] ** 2).sum()
            + ((p[..., 5 * b:][has_object] - truth[:, 5:]) ** 2).sum())
    return (loss / n).to(pred.dtype)


# ---- 06.decode -------------------------------------------------------------------------------
def _candidates(pred, num_classes, image_size, score_threshold):
    h, w = _size(image_size)
    pred = pred.detach().float()
    s, c = pred.shape[0], num_classes
    b = (pred.shape[-1] - c) // 5
    cells = pred[..., :5 * b].reshape(s, s, b, 5)
    rows, cols = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    cx, cy = (cols[..., None] + cells[..., 0]) / s, (rows[..., None] + cells[..., 1]) / s
    bw, bh = cells[..., 2].clamp(min=0), cells[..., 3].clamp(min=0)
    boxes = torch.stack([((cx - bw / 2) * w).clamp(0, w), ((cy - bh / 2) * h).clamp(0, h),
                         ((cx + bw / 2) * w).clamp(0, w), ((cy + bh / 2) * h).clamp(0, h)], -1).reshape(-1, 4)
    scores = (cells[..., 4, None] * pred[..., None, 5 * b:]).reshape(-1, c)
    box_index, labels = torch.nonzero(scores >= score_threshold, as_tuple=True)
    return boxes[box_index], scores[box_index, labels], labels


@PROBES.add("06.decode", "the course's batched_nms (lab 05's, as the lab allows)")
def decode_course_nms(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    boxes, scores, labels = _candidates(pred, num_classes, image_size, score_threshold)
    keep = _nms.batched_nms(boxes, scores, labels, iou_threshold)
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


@PROBES.add("06.decode", "torchvision.ops.batched_nms (as the lab allows)")
def decode_torchvision_nms(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    boxes, scores, labels = _candidates(pred, num_classes, image_size, score_threshold)
    keep = torchvision.ops.batched_nms(boxes, scores, labels, iou_threshold)
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


@PROBES.add("06.decode", "pixel boxes as (col + x) * W / S (another order of the operations), NMS class by class "
                         "with torchvision.ops.nms, detections sorted at the end")
def decode_per_class(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    h, w = _size(image_size)
    pred = pred.detach().float()
    s, c = pred.shape[0], num_classes
    b = (pred.shape[-1] - c) // 5
    out = {"boxes": [], "scores": [], "labels": []}
    cells = pred[..., :5 * b].reshape(s, s, b, 5)
    rows, cols = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    cx, cy = (cols[..., None] + cells[..., 0]) * w / s, (rows[..., None] + cells[..., 1]) * h / s
    bw, bh = cells[..., 2].clamp(min=0) * w, cells[..., 3].clamp(min=0) * h
    boxes = torch.stack([(cx - bw / 2).clamp(0, w), (cy - bh / 2).clamp(0, h), (cx + bw / 2).clamp(0, w),
                         (cy + bh / 2).clamp(0, h)], -1).reshape(-1, 4)
    for k in range(c):
        scores = (cells[..., 4] * pred[..., None, 5 * b + k]).reshape(-1)
        keep = scores >= score_threshold
        kept = torchvision.ops.nms(boxes[keep], scores[keep], iou_threshold)
        out["boxes"].append(boxes[keep][kept])
        out["scores"].append(scores[keep][kept])
        out["labels"].append(torch.full((len(kept),), k, dtype=torch.int64))
    result = {key: torch.cat(v) for key, v in out.items()}
    order = torch.sort(result["scores"], descending=True, stable=True).indices
    return {key: v[order] for key, v in result.items()}
