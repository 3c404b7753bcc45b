"""Box encoding and decoding relative to anchors / proposals, as torchvision's ``BoxCoder`` (lab 05).

A box is coded relative to a reference box ``(x_a, y_a, w_a, h_a)`` (centre and size) as
``(wx (x - x_a) / w_a, wy (y - y_a) / h_a, ww log(w / w_a), wh log(h / h_a))``. torchvision uses the
weights ``(1, 1, 1, 1)`` in the RPN and ``(10, 10, 5, 5)`` in the box head. Decoding clamps ``dw, dh``
at ``log(1000 / 16)`` so that ``exp`` cannot overflow.
"""

from __future__ import annotations

import math

import torch

from course_utils import validation

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _weights(weights: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if not isinstance(weights, (tuple, list)) or len(weights) != 4:
        raise TypeError(f"weights must be 4 numbers (wx, wy, ww, wh), e.g. (10, 10, 5, 5), got {weights!r}")
    wx, wy, ww, wh = (validation.number(f"weights[{i}]", w, minimum=0, strict_minimum=True)
                      for i, w in enumerate(weights))
    return wx, wy, ww, wh


def encode(boxes: torch.Tensor, references: torch.Tensor,
           weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Codes ``N x 4`` of XYXY ``boxes`` ``N x 4`` (the targets) relative to ``references`` ``N x 4``.

    Same as ``BoxCoder(weights).encode_single(boxes, references)``.
    """
    validation.boxes("boxes", boxes)
    validation.boxes("references", references)
    if boxes.shape != references.shape:
        raise ValueError(f"boxes and references must match one to one, got {tuple(boxes.shape)} and "
                         f"{tuple(references.shape)}")
    w = torch.as_tensor(_weights(weights), dtype=boxes.dtype, device=boxes.device)
    ex_w = references[:, 2:3] - references[:, 0:1]
    ex_h = references[:, 3:4] - references[:, 1:2]
    ex_x = references[:, 0:1] + 0.5 * ex_w
    ex_y = references[:, 1:2] + 0.5 * ex_h
    gt_w = boxes[:, 2:3] - boxes[:, 0:1]
    gt_h = boxes[:, 3:4] - boxes[:, 1:2]
    gt_x = boxes[:, 0:1] + 0.5 * gt_w
    gt_y = boxes[:, 1:2] + 0.5 * gt_h
    return torch.cat((w[0] * (gt_x - ex_x) / ex_w, w[1] * (gt_y - ex_y) / ex_h,
                      w[2] * torch.log(gt_w / ex_w), w[3] * torch.log(gt_h / ex_h)), dim=1)


def decode(codes: torch.Tensor, references: torch.Tensor,
           weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
           clip: float = BBOX_XFORM_CLIP) -> torch.Tensor:
    """XYXY boxes from ``codes`` ``N x 4K`` (``K`` boxes per reference, e.g. one per class) and
    ``references`` ``N x 4``: returns ``N x 4K``.

    Same as ``BoxCoder(weights, clip).decode_single(codes, references)``.
    """
    validation.tensor("codes", codes, ndim=2, dtypes="float")
    validation.boxes("references", references)
    if codes.shape[1] % 4 or codes.shape[0] != references.shape[0]:
        raise ValueError(f"codes must be N x 4K for N = {references.shape[0]} references, got {tuple(codes.shape)}")
    wx, wy, ww, wh = _weights(weights)
    clip = validation.number("clip", clip)
    references = references.to(codes.dtype)
    widths = references[:, 2] - references[:, 0]
    heights = references[:, 3] - references[:, 1]
    ctr_x = references[:, 0] + 0.5 * widths
    ctr_y = references[:, 1] + 0.5 * heights
    dx, dy = codes[:, 0::4] / wx, codes[:, 1::4] / wy
    dw = torch.clamp(codes[:, 2::4] / ww, max=clip)
    dh = torch.clamp(codes[:, 3::4] / wh, max=clip)
    pred_x = dx * widths[:, None] + ctr_x[:, None]
    pred_y = dy * heights[:, None] + ctr_y[:, None]
    half_w = 0.5 * (torch.exp(dw) * widths[:, None])
    half_h = 0.5 * (torch.exp(dh) * heights[:, None])
    return torch.stack((pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h), dim=2).flatten(1)
