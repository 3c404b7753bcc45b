"""Matching predictions (anchors, proposals) to ground-truth boxes, as torchvision's ``Matcher`` (lab 05).

Each prediction takes the ground truth it overlaps most. With quality ``q`` (its IoU):
``q >= high`` -> that box's index; ``q < low`` -> ``-1`` (background); in between -> ``-2``
(ignored in the loss). With ``allow_low_quality_matches`` each ground-truth box also keeps the
predictions that overlap it best, even below ``low`` (so no object is left without an anchor).
torchvision's RPN uses ``0.7 / 0.3`` with low-quality matches, the box head ``0.5 / 0.5`` without.
"""

from __future__ import annotations

import torch

from course_utils import validation

BELOW_LOW_THRESHOLD = -1
BETWEEN_THRESHOLDS = -2


def match(quality: torch.Tensor, high: float, low: float, allow_low_quality_matches: bool = False) -> torch.Tensor:
    """For ``quality`` ``M x N`` (M ground-truth boxes x N predictions, e.g. IoU), an int64 ``N`` of matches.

    Same as ``torchvision.models.detection._utils.Matcher(high, low, allow_low_quality_matches)``,
    except for empty inputs, which torchvision refuses: ``M = 0`` gives all ``-1`` (an image without
    objects: everything is background), ``N = 0`` an empty result.
    """
    validation.tensor("quality", quality, ndim=2)
    high = validation.number("high", high)
    low = validation.number("low", low, maximum=high)
    if not isinstance(allow_low_quality_matches, bool):
        raise TypeError(f"allow_low_quality_matches must be True or False, got {allow_low_quality_matches!r}")
    m, n = quality.shape
    if m == 0 or n == 0:
        return torch.full((n,), BELOW_LOW_THRESHOLD, dtype=torch.int64, device=quality.device)
    best, matches = quality.max(dim=0)                     # N: best quality and its ground truth
    all_matches = matches.clone()
    matches[best < low] = BELOW_LOW_THRESHOLD
    matches[(best >= low) & (best < high)] = BETWEEN_THRESHOLDS
    if allow_low_quality_matches:
        best_per_gt = quality.max(dim=1).values              # M
        _, preds = torch.where(quality == best_per_gt[:, None])
        matches[preds] = all_matches[preds]
    return matches
