"""Lab 06 (YOLO): wrong implementations a student plausibly writes, and shortcuts that call the course's
YOLO functions the exercises ask them to write themselves."""

from __future__ import annotations

import math

import torch
import torchvision

from mutants import Collection

MUTANTS = Collection()
CHEATS = Collection()


def _size(image_size):
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


# ---- 06.encode_targets -----------------------------------------------------------------------
def _encode(boxes, labels, grid, num_classes, image_size, last_wins=False, image_xy=False, cell_wh=False,
            sqrt_wh=False, swap=False, rounding=False, clamp=True, label_shift=0, one_hot=True,
            dtype=torch.float32, corner=False, size_swapped=False):
    h, w = _size(image_size)
    if size_swapped:
        h, w = w, h
    s = grid
    target = torch.zeros(s, s, 5 + num_classes, dtype=dtype)
    for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist()):
        cx, cy = (x1, y1) if corner else ((x1 + x2) / 2, (y1 + y2) / 2)
        u, v = cx * s / w, cy * s / h
        col, row = (round(u), round(v)) if rounding else (math.floor(u), math.floor(v))
        if clamp:
            col, row = min(col, s - 1), min(row, s - 1)
        x, y = (cx / w, cy / h) if image_xy else (u - col, v - row)
        if swap:
            row, col = col, row
        if target[row, col, 4] == 1:
            if not last_wins:
                continue
            target[row, col] = 0
        bw, bh = (x2 - x1) / w, (y2 - y1) / h
        if cell_wh:
            bw, bh = bw * s, bh * s
        if sqrt_wh:
            bw, bh = math.sqrt(bw), math.sqrt(bh)
        target[row, col, :5] = torch.tensor([x, y, bw, bh, 1.0], dtype=dtype)
        if one_hot:
            target[row, col, 5 + label + label_shift] = 1.0
        else:
            target[row, col, 5] = float(label)
    return target


@MUTANTS.add("06.encode_targets", "the last object in a shared cell overwrites the first (the first must keep it)")
def encode_last_wins(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, last_wins=True)


@MUTANTS.add("06.encode_targets", "x, y relative to the image (cx / W) instead of to the cell")
def encode_image_xy(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, image_xy=True)


@MUTANTS.add("06.encode_targets", "w, h relative to the cell (times S) instead of to the image")
def encode_cell_wh(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, cell_wh=True)


@MUTANTS.add("06.encode_targets", "stores sqrt(w), sqrt(h) in the target (the loss takes the square roots)")
def encode_sqrt(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, sqrt_wh=True)


@MUTANTS.add("06.encode_targets", "target[col, row] instead of target[row, col]")
def encode_swapped(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, swap=True)


@MUTANTS.add("06.encode_targets", "round() instead of floor() for the cell")
def encode_round(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, rounding=True)


@MUTANTS.add("06.encode_targets", "no clamp to S - 1: a centre on the right or bottom edge indexes cell S (IndexError)")
def encode_no_clamp(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, clamp=False)


@MUTANTS.add("06.encode_targets", "labels taken as 1 .. C: the one-hot at 5 + label - 1")
def encode_label_minus_one(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, label_shift=-1)


@MUTANTS.add("06.encode_targets", "the one-hot at 5 + label + 1 (an off-by-one)")
def encode_label_plus_one(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, label_shift=1)


@MUTANTS.add("06.encode_targets", "the class index stored in one number instead of one-hot")
def encode_not_one_hot(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, one_hot=False)


@MUTANTS.add("06.encode_targets", "a float64 target (torch.zeros(..., dtype=torch.float64))")
def encode_float64(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, dtype=torch.float64)


@MUTANTS.add("06.encode_targets", "the top-left corner (x1, y1) taken as the centre")
def encode_corner(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, corner=True)


@MUTANTS.add("06.encode_targets", "image_size read as (W, H)")
def encode_size_swapped(boxes, labels, grid, num_classes, image_size):
    return _encode(boxes, labels, grid, num_classes, image_size, size_swapped=True)


# ---- 06.yolo_loss ----------------------------------------------------------------------------
def _safe_sqrt(x):
    return torch.sign(x) * torch.sqrt(x.abs() + 1e-6)


def _loss(pred, target, lambda_coord=5.0, lambda_noobj=0.5, detach=True, first_only=False, last_of_ties=False,
          noobj_in_object_cells=True, coord_on_wh=True, sqrt=_safe_sqrt, mean=False, divide=True,
          class_everywhere=False, confidence_target_iou=True, iou_image_xy=False):
    n, s = pred.shape[:2]
    c = target.shape[-1] - 5
    b = (pred.shape[-1] - c) // 5
    boxes = pred[..., : 5 * b].reshape(n, s, s, b, 5)
    rows, cols = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")

    def corners(xywh):
        if iou_image_xy:
            cx, cy = xywh[..., 0], xywh[..., 1]
        else:
            cx, cy = (cols[..., None] + xywh[..., 0]) / s, (rows[..., None] + xywh[..., 1]) / s
        w, h = xywh[..., 2].clamp(min=0), xywh[..., 3].clamp(min=0)
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

    def iou_of(p, t):
        px1, py1, px2, py2 = corners(p)
        tx1, ty1, tx2, ty2 = corners(t)
        inter = ((torch.min(px2, tx2) - torch.max(px1, tx1)).clamp(min=0)
                 * (torch.min(py2, ty2) - torch.max(py1, ty1)).clamp(min=0))
        union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
        return torch.where(union > 0, inter / union.where(union > 0, torch.ones_like(union)), torch.zeros_like(inter))

    has_object = target[..., 4] > 0
    if detach:
        with torch.no_grad():
            iou = iou_of(boxes[..., :4], target[..., None, :4])
    else:
        iou = iou_of(boxes[..., :4], target[..., None, :4])
    if first_only:
        best = torch.zeros(n, s, s, dtype=torch.int64)
    elif last_of_ties:
        best = b - 1 - iou.detach().flip(-1).argmax(-1)
    else:
        best = iou.detach().argmax(-1)
    mask = torch.nn.functional.one_hot(best, b).bool() & has_object[..., None]
    chosen, truth, chosen_iou = boxes[mask], target[has_object], iou[mask]

    def total(x):
        return x.mean() if mean else x.sum()

    xy = total((chosen[:, :2] - truth[:, :2]) ** 2)
    wh = total((sqrt(chosen[:, 2:4]) - sqrt(truth[:, 2:4])) ** 2)
    coord = lambda_coord * (xy + wh) if coord_on_wh else lambda_coord * xy + wh
    goal = chosen_iou if confidence_target_iou else torch.ones_like(chosen_iou)
    obj = total((chosen[:, 4] - goal) ** 2)
    others = ~mask if noobj_in_object_cells else ~has_object[..., None].expand_as(mask)
    noobj = lambda_noobj * total(boxes[..., 4][others] ** 2)
    probs = pred[..., 5 * b:]
    if class_everywhere:
        cls = total((probs - target[..., 5:]) ** 2)
    else:
        cls = total((probs[has_object] - truth[:, 5:]) ** 2)
    loss = coord + obj + noobj + cls
    return loss / n if divide else loss


@MUTANTS.add("06.yolo_loss", "the IoU target not detached: the gradient flows into the boxes through it")
def loss_iou_not_detached(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, detach=False)


@MUTANTS.add("06.yolo_loss", "predictor 0 always responsible (no IoU comparison)")
def loss_first_predictor(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, first_only=True)


@MUTANTS.add("06.yolo_loss", "equal IoUs: the last predictor responsible instead of the first")
def loss_last_of_ties(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, last_of_ties=True)


@MUTANTS.add("06.yolo_loss", "no-object term only in cells without an object (the other predictor of an object "
                             "cell goes free)")
def loss_noobj_empty_cells_only(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, noobj_in_object_cells=False)


@MUTANTS.add("06.yolo_loss", "lambda_coord on the x, y terms only")
def loss_lambda_xy_only(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, coord_on_wh=False)


@MUTANTS.add("06.yolo_loss", "no square roots on w, h")
def loss_no_sqrt(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, sqrt=lambda x: x)


@MUTANTS.add("06.yolo_loss", "torch.sqrt: NaN on a negative predicted width")
def loss_unsafe_sqrt(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, sqrt=torch.sqrt)


@MUTANTS.add("06.yolo_loss", "means instead of sums (F.mse_loss's default reduction)")
def loss_means(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, mean=True)


@MUTANTS.add("06.yolo_loss", "not divided by the batch size N")
def loss_not_divided(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, divide=False)


@MUTANTS.add("06.yolo_loss", "the class term in every cell, not only where there is an object")
def loss_class_everywhere(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, class_everywhere=True)


@MUTANTS.add("06.yolo_loss", "confidence target 1 instead of the IoU")
def loss_confidence_one(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, confidence_target_iou=False)


@MUTANTS.add("06.yolo_loss", "the IoU computed with x, y taken as image-relative (not placed in the cell)")
def loss_iou_image_xy(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return _loss(pred, target, lambda_coord, lambda_noobj, iou_image_xy=True)


@MUTANTS.add("06.yolo_loss", "the loss as a Python number wrapped in a new tensor: no gradient")
def loss_no_gradient(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    return torch.tensor(_loss(pred, target, lambda_coord, lambda_noobj).item())


# ---- 06.decode -------------------------------------------------------------------------------
def _decode(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5, confidence_only=False,
            best_class=False, clip=True, strict=False, agnostic=False, swap=False, pixels=True, label_shift=0,
            threshold_confidence=False, by_class=False, corner=False, clamp_wh=True, size_swapped=False):
    h, w = _size(image_size)
    if size_swapped:
        h, w = w, h
    s, c = pred.shape[0], num_classes
    b = (pred.shape[-1] - c) // 5
    cells = pred.detach()[..., : 5 * b].reshape(s, s, b, 5)
    rows, cols = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    if swap:
        rows, cols = cols, rows
    cx = (cols[..., None] + cells[..., 0]) * w / s
    cy = (rows[..., None] + cells[..., 1]) * h / s
    bw, bh = (cells[..., 2].clamp(min=0), cells[..., 3].clamp(min=0)) if clamp_wh else (cells[..., 2], cells[..., 3])
    if pixels:
        bw, bh = bw * w, bh * h
    if corner:
        boxes = torch.stack([cx, cy, cx + bw, cy + bh], -1).reshape(-1, 4)
    else:
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1).reshape(-1, 4)
    if clip:
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h), boxes[:, 2].clamp(0, w),
                             boxes[:, 3].clamp(0, h)], 1)
    conf, probs = cells[..., 4], pred.detach()[..., 5 * b:]
    scores = conf[..., None].expand(s, s, b, c) if confidence_only else conf[..., None] * probs[:, :, None, :]
    if best_class:
        top = torch.nn.functional.one_hot(probs.argmax(-1), c).bool()[:, :, None, :].expand(s, s, b, c)
        scores = torch.where(top, scores, torch.full_like(scores, -1.0))
    scores = scores.reshape(-1)
    labels = torch.arange(c).repeat(s * s * b)
    boxes = boxes.repeat_interleave(c, 0)
    keep = scores > score_threshold if strict else scores >= score_threshold
    if threshold_confidence:
        keep = (conf[..., None].expand(s, s, b, c) >= score_threshold).reshape(-1)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if by_class:
        kept = [torch.where(labels == k)[0][torchvision.ops.nms(boxes[labels == k], scores[labels == k], iou_threshold)]
                for k in range(c)]
        kept = torch.cat(kept)
    else:
        groups = torch.zeros_like(labels) if agnostic else labels
        kept = torchvision.ops.batched_nms(boxes, scores, groups, iou_threshold)
    return {"boxes": boxes[kept], "scores": scores[kept], "labels": labels[kept] + label_shift}


@MUTANTS.add("06.decode", "score = confidence only (P(class | object) ignored)")
def decode_confidence_only(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, confidence_only=True)


@MUTANTS.add("06.decode", "only each predictor's best class (every class above the threshold is a detection)")
def decode_best_class_only(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, best_class=True)


@MUTANTS.add("06.decode", "boxes not clipped to the image")
def decode_no_clip(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, clip=False)


@MUTANTS.add("06.decode", "score > threshold instead of >=")
def decode_strict(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, strict=True)


@MUTANTS.add("06.decode", "class-agnostic NMS: a box of one class suppresses another class's")
def decode_agnostic(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, agnostic=True)


@MUTANTS.add("06.decode", "rows and columns swapped (x from the row, y from the column)")
def decode_swapped(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, swap=True)


@MUTANTS.add("06.decode", "w, h left relative to the image (not scaled to pixels)")
def decode_unscaled_wh(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, pixels=False)


@MUTANTS.add("06.decode", "labels 1 .. C (the scenes' convention) instead of 0 .. C-1")
def decode_labels_plus_one(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, label_shift=1)


@MUTANTS.add("06.decode", "the threshold applied to the confidence instead of to the class score")
def decode_threshold_confidence(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, threshold_confidence=True)


@MUTANTS.add("06.decode", "NMS class by class, the results listed class by class (not by decreasing score)")
def decode_by_class(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, by_class=True)


@MUTANTS.add("06.decode", "(x, y) taken as the box's top-left corner")
def decode_corner(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, corner=True)


@MUTANTS.add("06.decode", "a negative predicted width not clamped at 0 (x1 > x2)")
def decode_no_clamp_wh(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, clamp_wh=False)


@MUTANTS.add("06.decode", "iou_threshold ignored: NMS always at 0.5")
def decode_fixed_nms_threshold(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, 0.5)


@MUTANTS.add("06.decode", "score_threshold ignored: always 0.2")
def decode_fixed_score_threshold(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, 0.2, iou_threshold)


@MUTANTS.add("06.decode", "NMS suppresses at IoU >= iou_threshold (torchvision: only >)")
def decode_inclusive_nms(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold - 1e-9)


@MUTANTS.add("06.decode", "image_size read as (W, H)")
def decode_size_swapped(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold, size_swapped=True)


# ---- cheats: the course's own YOLO functions -------------------------------------------------
@CHEATS.add("06.encode_targets", "course_utils.ops.yolo.encode_targets")
def encode_course(boxes, labels, grid, num_classes, image_size):
    from course_utils.ops.yolo import encode_targets

    return encode_targets(boxes, labels, grid, num_classes, image_size)


@CHEATS.add("06.yolo_loss", "course_utils.ops.yolo.yolo_loss_terms, summed")
def loss_course_terms(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    from course_utils.ops import yolo

    return sum(yolo.yolo_loss_terms(pred, target, lambda_coord, lambda_noobj).values())


@CHEATS.add("06.yolo_loss", "course_utils.ops.yolo.responsible for the responsible predictors")
def loss_course_responsible(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    from course_utils.ops import yolo

    yolo.responsible(pred, target)
    return _loss(pred, target, lambda_coord, lambda_noobj)


@CHEATS.add("06.yolo_loss", "course_utils.ops.yolo.yolo_loss")
def loss_course(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    from course_utils.ops.yolo import yolo_loss

    return yolo_loss(pred, target, lambda_coord, lambda_noobj)


@CHEATS.add("06.decode", "course_utils.ops.yolo.decode")
def decode_course(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    from course_utils.ops import yolo

    return yolo.decode(pred, num_classes, image_size, score_threshold, iou_threshold)


@CHEATS.add("06.yolo_loss", "the course's private _loss_terms (what yolo_loss sums)")
def loss_course_private_terms(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    from course_utils.ops import yolo

    return sum(yolo._loss_terms(pred, target, lambda_coord, lambda_noobj).values())


@CHEATS.add("06.yolo_loss", "the course's private _responsible for the responsible predictors and their IoUs")
def loss_course_private_responsible(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    from course_utils.ops import yolo

    c = target.shape[-1] - 5
    yolo._responsible(pred, target, pred.shape[1], (pred.shape[-1] - c) // 5)
    return _loss(pred, target, lambda_coord, lambda_noobj)


@CHEATS.add("06.yolo_loss", "the course's paired_box_iou for the predictors' IoUs")
def loss_course_paired_iou(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    from course_utils.structures.boxes import paired_box_iou

    paired_box_iou(torch.zeros(1, 4), torch.zeros(1, 4))
    return _loss(pred, target, lambda_coord, lambda_noobj)


@CHEATS.add("06.decode", "the course's private _cell_boxes (the boxes in the image)")
def decode_course_cell_boxes(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    from course_utils.ops import yolo

    yolo._cell_boxes(torch.zeros(1, 1, 1, 4), 1)
    return _decode(pred, num_classes, image_size, score_threshold, iou_threshold)
