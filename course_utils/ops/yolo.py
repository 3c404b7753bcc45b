"""YOLOv1 (Redmon, Divvala, Girshick & Farhadi, *You Only Look Once*, CVPR 2016): grid targets, the loss
and the decoding to boxes. The lab-06 references.

The image is cut into an ``S x S`` grid. Each cell predicts ``5B + C`` numbers, in this order:

- ``B`` predictors of 5 numbers each, ``(x, y, w, h, confidence)``: predictor ``b`` is
  ``pred[..., 5*b : 5*b + 5]``; ``x, y`` is the box centre relative to the cell (0 .. 1 inside it),
  ``w, h`` the box size relative to the image (0 .. 1);
- then ``C`` class probabilities ``P(class | object)``: ``pred[..., 5*B:]``.

Pascal VOC's ``S = 7, B = 2, C = 20`` gives ``7 x 7 x 30 = 1470`` numbers per image. The functions here
take the predictions as the network gives them (after its activations: the model decides those), so
training and decoding see the same numbers.

The target of an image is ``S x S x (5 + C)``: in the cell that holds an object's centre, ``x, y, w, h``
(as above), ``1`` (an object is here) and the class one-hot; zeros elsewhere. Classes are ``0 .. C-1``
(YOLO has no background class; the course's scenes label things from 1: pass ``labels - 1``).
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms

from course_utils import validation
from course_utils.structures.boxes import (
    check_xyxy,
    clip_boxes_to_image,
    paired_box_iou,
)

LAMBDA_COORD = 5.0   # the paper's weight of the box terms
LAMBDA_NOOBJ = 0.5   # ... and of the confidence of predictors without an object
SQRT_EPS = 1e-6      # inside the safe square root


def output_size(grid: int, num_boxes: int, num_classes: int) -> int:
    """Numbers per image of a YOLOv1 head: ``S * S * (5B + C)`` (1470 for VOC's 7, 2, 20)."""
    s, b, c = (validation.positive_int(n, v) for n, v in (("grid", grid), ("num_boxes", num_boxes),
                                                             ("num_classes", num_classes)))
    return s * s * (5 * b + c)


def encode_targets(boxes: torch.Tensor, labels: torch.Tensor, grid: int, num_classes: int,
                   image_size: int | tuple[int, int]) -> torch.Tensor:
    """The ``S x S x (5 + C)`` float32 target of one image.

    Args:
        boxes: ``N x 4`` XYXY in pixels, centres inside the image.
        labels: ``N`` class indices ``0 .. C-1``.
        grid: ``S``; num_classes: ``C``; image_size: ``(H, W)`` (or one int for a square image).

    The cell of a box is ``(row, col) = (floor(cy * S / H), floor(cx * S / W))``, at most ``S - 1``: a
    centre on a border between cells belongs to the cell below / to the right, a centre on the image's
    right or bottom edge to the last cell (then ``x`` or ``y`` is 1). ``x = cx * S / W - col``,
    ``y = cy * S / H - row``, ``w = (x2 - x1) / W``, ``h = (y2 - y1) / H``.

    One object per cell (YOLOv1's limit): when several centres fall into one cell, **the first object
    (in the order given) keeps the cell** and the others are not in the target.
    """
    check_xyxy("boxes", boxes)
    validation.tensor("labels", labels, ndim=1, dtypes="int")
    s = validation.positive_int("grid", grid)
    c = validation.positive_int("num_classes", num_classes)
    h, w = validation.size_pair("image_size", image_size, square=True)
    if len(labels) != len(boxes):
        raise ValueError(f"need one label per box, got {len(boxes)} boxes and {len(labels)} labels")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= c):
        raise ValueError(f"labels must be class indices 0 .. {c - 1} (YOLO has no background class; the "
                         f"scenes' labels start at 1: pass labels - 1), got {labels.tolist()}")
    b = boxes.detach().double().cpu()
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    if len(b) and ((cx < 0) | (cx > w) | (cy < 0) | (cy > h)).any():
        raise ValueError(f"every box centre must lie inside the {h} x {w} image, got centres "
                         f"{torch.stack([cx, cy], 1).tolist()}")
    u, v = cx * s / w, cy * s / h                                      # centres in cell units
    cols, rows = u.floor().long().clamp(max=s - 1), v.floor().long().clamp(max=s - 1)
    target = torch.zeros(s, s, 5 + c, dtype=torch.float64)
    for i in range(len(b)):
        r, col = int(rows[i]), int(cols[i])
        if target[r, col, 4] == 1:                                     # taken by an earlier object
            continue
        target[r, col, :5] = torch.stack([u[i] - col, v[i] - rows[i], (b[i, 2] - b[i, 0]) / w,
                                          (b[i, 3] - b[i, 1]) / h, torch.tensor(1.0, dtype=torch.float64)])
        target[r, col, 5 + int(labels[i])] = 1.0
    return target.float().to(boxes.device)


def _grid_shapes(pred: torch.Tensor, target: torch.Tensor) -> tuple[int, int, int]:
    """``(S, B, C)`` from ``pred`` ``N x S x S x (5B + C)`` and ``target`` ``N x S x S x (5 + C)``."""
    validation.tensor("pred", pred, ndim=4, dtypes="float")
    validation.tensor("target", target, ndim=4, dtypes="float")
    _, s, s2, depth = pred.shape
    if s != s2 or target.shape[:3] != pred.shape[:3]:
        raise ValueError(f"pred must be N x S x S x (5B + C) and target N x S x S x (5 + C) with the same "
                         f"N and S, got {tuple(pred.shape)} and {tuple(target.shape)}")
    c = target.shape[-1] - 5
    if c < 1 or depth <= c or (depth - c) % 5:
        raise ValueError(f"the last dimension of target must be 5 + C (C >= 1) and that of pred 5B + C, "
                         f"got {target.shape[-1]} and {depth}")
    return s, (depth - c) // 5, c


def _cell_boxes(xywh: torch.Tensor, s: int) -> torch.Tensor:
    """``... x S x S x K x 4`` cell-relative ``(x, y, w, h)`` -> image-relative XYXY (``w, h`` clamped at 0)."""
    rows, cols = torch.meshgrid(torch.arange(s, device=xywh.device), torch.arange(s, device=xywh.device),
                                indexing="ij")
    cx = (cols[:, :, None] + xywh[..., 0]) / s
    cy = (rows[:, :, None] + xywh[..., 1]) / s
    w, h = xywh[..., 2].clamp(min=0), xywh[..., 3].clamp(min=0)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * sqrt(|x| + 1e-6)``: no NaN for a negative width, and a finite gradient at 0."""
    return torch.sign(x) * torch.sqrt(x.abs() + SQRT_EPS)


def responsible(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which predictor answers for each cell's object, and its IoU with the object (no gradient).

    Returns ``(mask, iou)``, both ``N x S x S x B``: ``mask`` is True for the predictor with the highest
    IoU with the ground truth (the first of equal IoUs) in cells that hold an object; ``iou`` the IoU of
    every predictor's box with the cell's ground-truth box (0 in cells without one). Both boxes are placed
    in the cell, centre ``((col + x) / S, (row + y) / S)`` and size ``(w, h)`` (a negative predicted
    width or height counts as 0, so such a box has IoU 0).
    """
    s, b, _ = _grid_shapes(pred, target)
    return _responsible(pred, target, s, b)


def _responsible(pred: torch.Tensor, target: torch.Tensor, s: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    # the body of responsible() and of the loss: the lab's check forbids the public functions (so that the
    # student writes them) but runs the course's yolo_loss, which must not call them
    with torch.no_grad():
        boxes = pred[..., : 5 * b].reshape(*pred.shape[:3], b, 5)
        iou = paired_box_iou(_cell_boxes(boxes[..., :4], s), _cell_boxes(target[..., None, :4], s))
        has_object = target[..., 4] > 0
        iou = iou * has_object[..., None]
        mask = torch.nn.functional.one_hot(iou.argmax(-1), b).bool() & has_object[..., None]
    return mask, iou


def yolo_loss_terms(pred: torch.Tensor, target: torch.Tensor, lambda_coord: float = LAMBDA_COORD,
                    lambda_noobj: float = LAMBDA_NOOBJ) -> dict[str, torch.Tensor]:
    """The four terms of the YOLOv1 loss, each summed over the batch and divided by the batch size ``N``.

    Args:
        pred: ``N x S x S x (5B + C)`` predictions (layout: the module docstring).
        target: ``N x S x S x (5 + C)`` from :func:`encode_targets`.

    In a cell with an object, the responsible predictor (:func:`responsible`) gets
    ``coord = lambda_coord * [(x - x^)^2 + (y - y^)^2 + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]`` and
    ``object = (confidence - IoU)^2`` (the IoU is a constant target, without gradient); every other predictor,
    in any cell, ``no_object = lambda_noobj * confidence^2``; a cell with an object adds
    ``class = sum_c (p_c - p^_c)^2``. Square roots: :func:`safe_sqrt`, for prediction and target.
    """
    return _loss_terms(pred, target, lambda_coord, lambda_noobj)


def _loss_terms(pred: torch.Tensor, target: torch.Tensor, lambda_coord: float,
                lambda_noobj: float) -> dict[str, torch.Tensor]:
    s, b, _ = _grid_shapes(pred, target)
    lambda_coord = validation.number("lambda_coord", lambda_coord, minimum=0)
    lambda_noobj = validation.number("lambda_noobj", lambda_noobj, minimum=0)
    n = pred.shape[0]
    mask, iou = _responsible(pred, target, s, b)
    boxes = pred[..., : 5 * b].reshape(*pred.shape[:3], b, 5)
    has_object = target[..., 4] > 0
    chosen = boxes[mask]                                   # K x 5, one per object cell, as in target[has_object]
    truth = target[has_object]                             # K x (5 + C)
    xy = ((chosen[:, :2] - truth[:, :2]) ** 2).sum()
    wh = ((safe_sqrt(chosen[:, 2:4]) - safe_sqrt(truth[:, 2:4])) ** 2).sum()
    return {
        "coord": lambda_coord * (xy + wh) / n,
        "object": ((chosen[:, 4] - iou[mask]) ** 2).sum() / n,
        "no_object": lambda_noobj * (boxes[..., 4][~mask] ** 2).sum() / n,
        "class": ((pred[..., 5 * b:][has_object] - truth[:, 5:]) ** 2).sum() / n,
    }


def yolo_loss(pred: torch.Tensor, target: torch.Tensor, lambda_coord: float = LAMBDA_COORD,
              lambda_noobj: float = LAMBDA_NOOBJ) -> torch.Tensor:
    """The YOLOv1 loss (Redmon et al. 2016, eq. 3), a 0-dim tensor: the sum of :func:`yolo_loss_terms`."""
    terms = _loss_terms(pred, target, lambda_coord, lambda_noobj)
    return terms["coord"] + terms["object"] + terms["no_object"] + terms["class"]


def decode(pred: torch.Tensor, num_classes: int, image_size: int | tuple[int, int],
           score_threshold: float = 0.2, iou_threshold: float = 0.5) -> dict[str, torch.Tensor]:
    """One image's ``S x S x (5B + C)`` predictions -> detections ``{"boxes", "scores", "labels"}``.

    Every predictor ``b`` of every cell proposes its box for every class ``k`` with the class-specific
    score ``confidence_b * P(k | object)``. Boxes go to pixels (centre ``((col + x) W / S, (row + y) H / S)``,
    size ``(w W, h H)`` with ``w, h`` clamped at 0) and are clipped to the image; candidates with
    ``score >= score_threshold`` go through NMS per class (IoU ``> iou_threshold`` suppresses). Returns
    ``boxes`` ``K x 4`` XYXY float32, ``scores`` ``K`` and ``labels`` ``K`` int64 (``0 .. C-1``), by
    decreasing score.
    """
    validation.tensor("pred", pred, ndim=3, dtypes="float")
    c = validation.positive_int("num_classes", num_classes)
    h, w = validation.size_pair("image_size", image_size, square=True)
    score_threshold = validation.number("score_threshold", score_threshold)
    iou_threshold = validation.number("iou_threshold", iou_threshold)
    s, s2, depth = pred.shape
    if s != s2 or depth <= c or (depth - c) % 5:
        raise ValueError(f"pred must be S x S x (5B + C) with C = {c}, got shape {tuple(pred.shape)}")
    b = (depth - c) // 5
    pred = pred.detach().float()
    cells = pred[..., : 5 * b].reshape(s, s, b, 5)
    scale = torch.tensor([w, h, w, h], dtype=pred.dtype, device=pred.device)
    boxes = (_cell_boxes(cells[..., :4], s) * scale).reshape(-1, 4)                # S*S*B x 4
    boxes = clip_boxes_to_image(boxes, (h, w))
    scores = (cells[..., 4, None] * pred[..., None, 5 * b:]).reshape(-1)           # S*S*B*C, class fastest
    boxes = boxes.repeat_interleave(c, 0)
    labels = torch.arange(c, device=pred.device).repeat(s * s * b)
    keep = scores >= score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    # torchvision's kernel (the course's lab-05 NMS gives the same boxes, but loops in Python: this
    # function is also what the detector runs at test time, where its speed is measured)
    kept = batched_nms(boxes, scores, labels, iou_threshold)
    return {"boxes": boxes[kept], "scores": scores[kept], "labels": labels[kept]}
