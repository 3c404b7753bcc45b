"""Segmentation metrics as defined in the lectures: confusion matrix, pixel accuracy, IoU.

With ``C`` classes the confusion matrix ``cm`` is ``C x C`` with ``cm[t, p]`` = number of pixels of
true class ``t`` predicted as ``p``. Then

- pixel accuracy = trace(cm) / sum(cm);
- IoU of class c = cm[c, c] / (row c + column c - cm[c, c]) = TP / (TP + FP + FN);
- mean IoU = the mean of the per-class IoUs over the classes that occur in the prediction or the
  target. A class absent from both has no IoU (NaN in :func:`per_class_iou`) and is left out of the
  mean, as torchmetrics' ``MulticlassJaccardIndex(average="macro")`` does. If no class occurs at all
  (every pixel ignored) the mean IoU is NaN.

Pixels whose target equals ``ignore_index`` are left out of everything.
"""

from __future__ import annotations

import torch

from course_utils import _validate


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """Count (target, prediction) pairs.

    Args:
        pred: predicted labels, integer tensor of any shape (e.g. ``B x H x W``).
        target: true labels, the same shape; values in ``[0, num_classes)`` or ``ignore_index``.
        num_classes: ``C``.
        ignore_index: a target value to skip (e.g. 255 for VOC borders), or ``None``.

    Returns:
        ``C x C`` int64 tensor, ``cm[t, p]``.
    """
    _validate.tensor("pred", pred, dtypes="int")
    _validate.tensor("target", target, dtypes="int")
    _validate.positive_int("num_classes", num_classes)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, labels in (("pred", pred), ("target", target)):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            bad = labels[(labels < 0) | (labels >= num_classes)][0].item()
            extra = f" or ignore_index={ignore_index}" if name == "target" and ignore_index is not None else ""
            raise ValueError(f"{name} has label {bad}; expected labels in [0, {num_classes}){extra}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _check_cm(cm: torch.Tensor) -> torch.Tensor:
    _validate.tensor("cm", cm, ndim=2)
    if cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix must be square (C x C), got shape {tuple(cm.shape)}")
    return cm.double()


def pixel_accuracy(cm: torch.Tensor) -> float:
    """Fraction of counted pixels whose prediction is right (NaN if no pixel was counted)."""
    cm = _check_cm(cm)
    total = cm.sum()
    return float(cm.diagonal().sum() / total) if total > 0 else float("nan")


def per_class_iou(cm: torch.Tensor) -> torch.Tensor:
    """IoU of each class (float64, length C); NaN for a class absent from both prediction and target."""
    cm = _check_cm(cm)
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
             ignore_index: int | None = None) -> float:
    """Mean IoU over the classes present in ``pred`` or ``target`` (see the module docstring)."""
    iou = per_class_iou(confusion_matrix(pred, target, num_classes, ignore_index))
    present = ~iou.isnan()
    return float(iou[present].mean()) if present.any() else float("nan")


def match_clusters(clusters: torch.Tensor, target: torch.Tensor, k: int, num_classes: int) -> torch.Tensor:
    """Map each cluster to the true class most of its pixels have (majority vote).

    Args:
        clusters: cluster index per pixel, integer tensor (any shape), values in ``[0, k)``.
        target: true class per pixel, same shape, values in ``[0, num_classes)``.

    Returns:
        ``k`` int64: ``mapping[c]`` is the class of cluster ``c`` (ties -> lowest class; an empty
        cluster -> class 0). ``mapping[clusters]`` is then a prediction to score with :func:`mean_iou`.
    """
    _validate.tensor("clusters", clusters, dtypes="int")
    _validate.tensor("target", target, dtypes="int")
    _validate.positive_int("k", k)
    _validate.positive_int("num_classes", num_classes)
    if clusters.shape != target.shape:
        raise ValueError(f"clusters and target must have the same shape, got {tuple(clusters.shape)} and {tuple(target.shape)}")
    if clusters.numel() and (clusters.min() < 0 or clusters.max() >= k):
        raise ValueError(f"clusters must be in [0, k={k}), got values in [{clusters.min().item()}, {clusters.max().item()}]")
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target must be in [0, {num_classes}), got values in [{target.min().item()}, {target.max().item()}]")
    counts = torch.bincount(clusters.reshape(-1).long() * num_classes + target.reshape(-1).long(),
                            minlength=k * num_classes).reshape(k, num_classes)
    return counts.argmax(1)
