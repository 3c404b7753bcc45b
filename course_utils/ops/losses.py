"""Segmentation losses: per-pixel cross-entropy with an ignore index, and the Dice loss.

Shapes: ``logits`` ``B x C x H x W`` (raw scores), ``target`` ``B x H x W`` int64 class ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import validation


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    validation.tensor("logits", logits, ndim=4, dtypes="float")
    validation.tensor("target", target, ndim=3, dtypes="int")
    if target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"target must be B x H x W = {(logits.shape[0], *logits.shape[2:])} for logits "
                         f"{tuple(logits.shape)}, got {tuple(target.shape)}")


def pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Mean over the pixels whose target is not ``ignore_index`` of ``-log softmax(logits)[target]``.

    The same as ``F.cross_entropy(logits, target, ignore_index=ignore_index)`` (NaN when every pixel
    is ignored: 0 / 0), with clear errors for wrong shapes and labels.
    """
    _check(logits, target)
    valid = target[target != ignore_index]
    if valid.numel() and (valid.min() < 0 or valid.max() >= logits.shape[1]):
        raise ValueError(f"target labels must be in [0, {logits.shape[1]}) or ignore_index={ignore_index}, "
                         f"got values in [{valid.min().item()}, {valid.max().item()}]")
    return F.cross_entropy(logits, target.long(), ignore_index=ignore_index)


def soft_dice(probs: torch.Tensor, onehot: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Mean over classes of ``(2 |P.T| + eps) / (|P| + |T| + eps)``, sums over the batch and pixels.

    ``probs`` and ``onehot`` are ``B x C x H x W``.
    """
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    return ((2 * inter + eps) / (probs.sum(dims) + onehot.sum(dims) + eps)).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``BCE - ln Dice`` on one-vs-rest sigmoid scores: the loss of the lab's optional Dice section.

    Dice is a ratio over whole regions, so a rare class weighs as much as a common one, where the
    per-pixel BCE (and cross-entropy) are dominated by the common classes.
    """
    _check(logits, target)
    onehot = F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, onehot)
    return bce - torch.log(soft_dice(torch.sigmoid(logits), onehot))
