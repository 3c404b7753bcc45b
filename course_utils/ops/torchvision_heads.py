"""torchvision's private ``roi_heads`` functions (pinned torchvision 0.29), imported in one place with the
course's argument order: what the lab-07 references in :mod:`course_utils.ops.masks` and
:mod:`course_utils.ops.keypoints` are held equal to (``tests/test_lab07.py``), and what the checks use
to judge a pasted pixel whose probability is a rounding error away from the threshold.

Nothing here validates its inputs: these are torchvision's functions as they are (a box entirely
outside the image makes ``paste_masks_in_image`` fail, a zero-width RoI gives ``keypoints_to_heatmap``
infinities); the course's references are the checked versions.
"""

from __future__ import annotations

import torch
from torchvision.models.detection import roi_heads

from course_utils.ops.masks import PASTE_PADDING


def mask_targets(gt_masks: torch.Tensor, boxes: torch.Tensor, matched_idxs: torch.Tensor, M: int) -> torch.Tensor:
    """``roi_heads.project_masks_on_boxes``: ``K x M x M``."""
    return roi_heads.project_masks_on_boxes(gt_masks, boxes, matched_idxs, M)


def maskrcnn_loss(mask_logits: torch.Tensor, proposals: list[torch.Tensor], gt_masks: list[torch.Tensor],
                  gt_labels: list[torch.Tensor], matched_idxs: list[torch.Tensor]) -> torch.Tensor:
    """``roi_heads.maskrcnn_loss``: targets (``project_masks_on_boxes`` per image) and the loss, in one."""
    return roi_heads.maskrcnn_loss(mask_logits, proposals, gt_masks, gt_labels, matched_idxs)


def paste_probabilities(masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """``roi_heads.paste_masks_in_image`` of ``N x M x M`` maps: the ``N x H x W`` pasted probabilities."""
    return roi_heads.paste_masks_in_image(masks[:, None], boxes, tuple(image_size), padding=PASTE_PADDING)[:, 0]


def grown_boxes(boxes: torch.Tensor, m: int) -> torch.Tensor:
    """``roi_heads.expand_boxes`` with ``paste_masks_in_image``'s scale for ``M x M`` maps, before truncation."""
    return roi_heads.expand_boxes(boxes, float(m + 2 * PASTE_PADDING) / m)


def keypoint_targets(keypoints: torch.Tensor, rois: torch.Tensor,
                     heatmap_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``roi_heads.keypoints_to_heatmap``: ``(heatmaps, valid)``, both ``K x J`` int64."""
    return roi_heads.keypoints_to_heatmap(keypoints, rois, heatmap_size)
