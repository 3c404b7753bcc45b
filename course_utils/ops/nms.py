"""Non-maximum suppression, plain and per class: the lab-05 references for ``torchvision.ops.nms`` /
``batched_nms``.

Greedy: visit the boxes by decreasing score (equal scores in input order: a stable sort, as
torchvision's kernel), keep a box unless a kept box overlaps it with IoU ``> iou_threshold``.
"""

from __future__ import annotations

import torch

from course_utils import validation
from course_utils.structures.boxes import box_iou, check_xyxy


def _check(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> float:
    check_xyxy("boxes", boxes)
    validation.tensor("scores", scores, ndim=1, dtypes="float")
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"need one score per box, got {boxes.shape[0]} boxes and {scores.shape[0]} scores")
    return validation.number("iou_threshold", iou_threshold)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices (int64) of the kept boxes of ``boxes`` ``N x 4`` XYXY, by decreasing score.

    Same output as ``torchvision.ops.nms(boxes, scores, iou_threshold)``.
    """
    iou_threshold = _check(boxes, scores, iou_threshold)
    order = torch.sort(scores, descending=True, stable=True).indices
    # IoU in the boxes' dtype, compared in float64 as torchvision's kernel does (float > double): an
    # IoU of float32(0.3) = 0.30000001 exceeds a threshold of 0.3.
    overlap = (box_iou(boxes[order], boxes[order]).double() > iou_threshold).cpu()   # N x N, in score order
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlap[i]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each category ``idxs`` ``N`` (int): boxes of different categories never suppress
    each other. Indices (int64) of the kept boxes by decreasing score.

    Same output as ``torchvision.ops.batched_nms``, which for up to 1000 boxes on the CPU (100 000 on
    a GPU) runs one NMS on boxes shifted apart by category (``boxes + idx * (max + 1)``), otherwise
    one NMS per category; both paths are reproduced here, so even rounding ties agree.
    """
    iou_threshold = _check(boxes, scores, iou_threshold)
    validation.tensor("idxs", idxs, ndim=1, dtypes="int")
    if idxs.shape[0] != boxes.shape[0]:
        raise ValueError(f"need one category per box, got {boxes.shape[0]} boxes and {idxs.shape[0]} idxs")
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    if boxes.numel() <= (4000 if boxes.device.type == "cpu" else 100_000):
        offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
        return nms(boxes + offsets[:, None], scores, iou_threshold)
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    for class_id in torch.unique(idxs):
        current = torch.where(idxs == class_id)[0]
        keep_mask[current[nms(boxes[current], scores[current], iou_threshold)]] = True
    kept = torch.where(keep_mask)[0]
    return kept[scores[kept].sort(descending=True)[1]]
