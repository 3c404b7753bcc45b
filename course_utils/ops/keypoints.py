"""The keypoint head of Keypoint R-CNN (He et al. 2017, section 5), by hand: the lab-07 reference for
torchvision's ``roi_heads.keypoints_to_heatmap``.

Each keypoint of a positive proposal becomes one "pixel" of an ``S x S`` heatmap over the proposal's box
(``S = 56`` in torchvision): its cell ``(row, col)``, stored as the linear index ``row * S + col`` that
the softmax cross-entropy over the ``S * S`` cells takes as its class. Keypoints that are not labelled
(visibility 0) or fall outside the box are not trained (``valid = 0``).
"""

from __future__ import annotations

import torch

from course_utils import validation
from course_utils.structures.boxes import check_xyxy


def keypoint_targets(keypoints: torch.Tensor, rois: torch.Tensor,
                     heatmap_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(heatmaps, valid)``, both ``K x J`` int64: each keypoint's cell in its RoI's ``S x S`` heatmap as
    the linear index ``row * S + col`` (0 where not valid), and 1 where the keypoint is trained.

    ``keypoints`` ``K x J x 3`` holds ``(x, y, visibility)`` per joint in image pixels, ``rois`` ``K x 4``
    the XYXY proposals (width and height > 0), ``heatmap_size`` ``S``. With ``x1, y1, x2, y2`` a RoI:
    ``col = floor((x - x1) * S / (x2 - x1))`` and ``row = floor((y - y1) * S / (y2 - y1))``, except that
    a keypoint exactly on the right edge (``x == x2``) gets ``col = S - 1`` (floor would give ``S``, one
    cell past the last), likewise ``y == y2``; ``valid`` = the cell is inside the grid and ``visibility > 0``
    (COCO: 1 labelled but hidden, 2 visible). Exactly torchvision's ``keypoints_to_heatmap``.
    """
    validation.tensor("keypoints", keypoints, ndim=3, dtypes="float")
    check_xyxy("rois", rois)
    size = validation.integer("heatmap_size", heatmap_size, minimum=1)
    if keypoints.shape[2] != 3 or len(keypoints) != len(rois):
        raise ValueError(f"keypoints must be K x J x 3 (x, y, visibility) with K = {len(rois)} (one row per roi), "
                         f"got shape {tuple(keypoints.shape)}")
    if len(rois) and ((rois[:, 2] <= rois[:, 0]) | (rois[:, 3] <= rois[:, 1])).any():
        raise ValueError("rois must have a positive width and height (x2 > x1, y2 > y1)")
    x1, y1, x2, y2 = (rois[:, i, None] for i in range(4))                 # K x 1 each
    x, y, visibility = keypoints.unbind(2)                                 # K x J each
    col = ((x - x1) * (size / (x2 - x1))).floor().long()
    row = ((y - y1) * (size / (y2 - y1))).floor().long()
    col = torch.where(x == x2, size - 1, col)                               # on the right edge: the last cell
    row = torch.where(y == y2, size - 1, row)
    valid = ((col >= 0) & (row >= 0) & (col < size) & (row < size) & (visibility > 0)).long()
    return (row * size + col) * valid, valid
