"""Boxes: formats, area, clipping and pairwise IoU (the lab-05 reference for ``torchvision.ops.box_iou``).

Boxes are ``N x 4`` float tensors. Formats:

- ``"xyxy"``: ``(x1, y1, x2, y2)``, corners (torchvision's and the course's default);
- ``"cxcywh"``: ``(cx, cy, w, h)``, centre and size;
- ``"xywh"``: ``(x1, y1, w, h)``, top-left corner and size (COCO's format).

Every function keeps the dtype (float32 in, float32 out) and handles ``N = 0``.
"""

from __future__ import annotations

import torch

from course_utils import validation
from course_utils.validation import (
    xyxy_boxes as check_xyxy,  # an input check: its home is validation
)

FORMATS = ("xyxy", "cxcywh", "xywh")


def _to_xyxy(boxes: torch.Tensor, fmt: str) -> torch.Tensor:
    if fmt == "xyxy":
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    if fmt == "xywh":
        return torch.stack((a, b, a + c, b + d), -1)
    return torch.stack((a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d), -1)  # cxcywh


def _from_xyxy(boxes: torch.Tensor, fmt: str) -> torch.Tensor:
    if fmt == "xyxy":
        return boxes
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = x2 - x1, y2 - y1
    if fmt == "xywh":
        return torch.stack((x1, y1, w, h), -1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, w, h), -1)  # cxcywh


def box_convert(boxes: torch.Tensor, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """``N x 4`` boxes from ``in_fmt`` to ``out_fmt`` (``"xyxy"``, ``"cxcywh"``, ``"xywh"``); a new tensor.

    Same values as ``torchvision.ops.box_convert``.
    """
    validation.boxes("boxes", boxes)
    validation.one_of("in_fmt", in_fmt, FORMATS)
    validation.one_of("out_fmt", out_fmt, FORMATS)
    if in_fmt == out_fmt:
        return boxes.clone()
    return _from_xyxy(_to_xyxy(boxes, in_fmt), out_fmt)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas ``N`` of ``N x 4`` XYXY boxes: ``(x2 - x1) * (y2 - y1)`` (0 for degenerate boxes)."""
    check_xyxy("boxes", boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def clip_boxes_to_image(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clip ``N x 4`` XYXY boxes to an image of ``size = (H, W)``: x in ``[0, W]``, y in ``[0, H]``.

    Same as ``torchvision.ops.clip_boxes_to_image`` (pixel-edge coordinates: a box may end at ``W``).
    """
    validation.boxes("boxes", boxes)
    h, w = validation.size_pair("size", size)
    x = boxes[:, 0::2].clamp(min=0, max=w)
    y = boxes[:, 1::2].clamp(min=0, max=h)
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``N x M`` of XYXY boxes ``boxes1`` ``N x 4`` and ``boxes2`` ``M x 4``.

    ``iou[i, j] = |b1_i & b2_j| / |b1_i | b2_j|``. Equals ``torchvision.ops.box_iou`` (same arithmetic,
    so the same float32 values), except that two boxes whose union is empty (zero-area boxes) get IoU 0
    where torchvision gives NaN. ``N = 0`` or ``M = 0`` gives an empty ``N x M`` tensor.
    """
    check_xyxy("boxes1", boxes1)
    check_xyxy("boxes2", boxes2)
    if boxes1.dtype != boxes2.dtype:
        raise TypeError(f"boxes1 and boxes2 must have the same dtype, got {boxes1.dtype} and {boxes2.dtype}")
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])   # N
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])   # M
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])         # N x M x 2
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])     # N x M x 2
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]                                       # N x M
    union = area1[:, None] + area2[None, :] - inter
    return torch.where(union > 0, inter / union.where(union > 0, torch.ones_like(union)), torch.zeros_like(inter))


def paired_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of box ``a[...]`` with box ``b[...]`` (XYXY in the last dimension, broadcast against each other):
    elementwise, not all pairs (:func:`box_iou`); 0 where the union is empty. No input checks: for tensors
    built inside the library (YOLO's per-cell boxes), which may hold zero-size boxes."""
    wh = (torch.min(a[..., 2:], b[..., 2:]) - torch.max(a[..., :2], b[..., :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
             + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter)
    return torch.where(union > 0, inter / union.where(union > 0, torch.ones_like(union)), torch.zeros_like(inter))
