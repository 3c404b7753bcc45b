"""Scoring segmentation as defined in the lectures: confusion matrix, pixel accuracy, IoU, predictions.

With ``C`` classes the confusion matrix ``cm`` is ``C x C`` with ``cm[t, p]`` = number of pixels of
true class ``t`` predicted as ``p``. Then

- pixel accuracy = trace(cm) / sum(cm);
- IoU of class c = cm[c, c] / (row c + column c - cm[c, c]) = TP / (TP + FP + FN);
- mean IoU = the mean of the per-class IoUs over the classes that occur in the prediction or the
  target. A class absent from both has no IoU (NaN in :func:`per_class_iou`) and is left out of the
  mean, as torchmetrics' ``MulticlassJaccardIndex(average="macro")`` does. If no class occurs at all
  (every pixel ignored) the mean IoU is NaN.

Pixels whose target equals ``ignore_index`` are left out of everything.

The **boundary F-score** (:func:`boundary_f1`) scores the outlines instead of the regions (Csurka, Larlus &
Perronnin, "What is a good evaluation measure for semantic segmentation?", BMVC 2013: the BF score). For an image
and a class ``c``, the boundary of a label map is the set of pixels of class ``c`` with a 4-neighbour (inside the
image) of another class; a predicted boundary pixel is right when a true boundary pixel of ``c`` lies within
``tolerance`` pixels (Euclidean distance), and conversely. Precision and recall over those pixels give
``F = 2 P R / (P + R)`` (1 when neither map has a boundary of ``c``, 0 when only one has). An image's score is the
mean over the classes present in its prediction or its target, and the data set's the mean over images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import validation


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
    validation.tensor("pred", pred, dtypes="int")
    validation.tensor("target", target, dtypes="int")
    validation.positive_int("num_classes", num_classes)
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
    validation.tensor("cm", cm, ndim=2)
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
    return mean_over_present(per_class_iou(confusion_matrix(pred, target, num_classes, ignore_index)))


def mean_over_present(iou: torch.Tensor) -> float:
    """The mean of the per-class values that are defined (not NaN); NaN if none is."""
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
    validation.tensor("clusters", clusters, dtypes="int")
    validation.tensor("target", target, dtypes="int")
    validation.positive_int("k", k)
    validation.positive_int("num_classes", num_classes)
    if clusters.shape != target.shape:
        raise ValueError(f"clusters and target must have the same shape, got {tuple(clusters.shape)} and "
                         f"{tuple(target.shape)}")
    if clusters.numel() and (clusters.min() < 0 or clusters.max() >= k):
        raise ValueError(f"clusters must be in [0, k={k}), got values in [{clusters.min().item()}, "
                         f"{clusters.max().item()}]")
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target must be in [0, {num_classes}), got values in [{target.min().item()}, "
                         f"{target.max().item()}]")
    counts = torch.bincount(clusters.reshape(-1).long() * num_classes + target.reshape(-1).long(),
                            minlength=k * num_classes).reshape(k, num_classes)
    return counts.argmax(1)


# ---- boundaries ---------------------------------------------------------------------------------
def _label_maps(name: str, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    validation.tensor(name, labels, ndim=(2, 3), dtypes="int")
    labels = labels[None] if labels.ndim == 2 else labels
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must hold labels in [0, {num_classes}), got values in "
                         f"[{labels.min().item()}, {labels.max().item()}]")
    return labels.long()


def class_boundaries(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``B x H x W`` (or ``H x W``) labels -> ``B x C x H x W`` bool: the pixels of class ``c`` that have a
    4-neighbour of another class (the image's border is not a boundary)."""
    validation.positive_int("num_classes", num_classes)
    labels = _label_maps("labels", labels, num_classes)
    masks = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()              # B x C x H x W
    p = F.pad(masks, (1, 1, 1, 1), mode="replicate")
    interior = p[..., 1:-1, 1:-1] * p[..., :-2, 1:-1] * p[..., 2:, 1:-1] * p[..., 1:-1, :-2] * p[..., 1:-1, 2:]
    return (masks > 0) & (interior == 0)


def _within(boundary: torch.Tensor, tolerance: float) -> torch.Tensor:
    """``B x C x H x W`` bool: pixels within ``tolerance`` (Euclidean) of a ``True`` pixel of ``boundary``."""
    r = int(tolerance)
    if r == 0:
        return boundary
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    disk = ((d[:, None] ** 2 + d[None, :] ** 2) <= tolerance ** 2).float()
    c = boundary.shape[1]
    hits = F.conv2d(boundary.float(), disk.expand(c, 1, -1, -1).contiguous(), padding=r, groups=c)
    return hits > 0


def boundary_f1_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                          tolerance: float = 2.0) -> torch.Tensor:
    """The boundary F-score of each image (see the module docstring): ``B`` float64 in [0, 1].

    Args:
        pred, target: ``B x H x W`` (or ``H x W``) integer labels in ``[0, num_classes)``.
        tolerance: the distance in pixels within which a boundary pixel counts as matched (>= 0).
    """
    validation.number("tolerance", tolerance, minimum=0.0)
    pred, target = _label_maps("pred", pred, num_classes), _label_maps("target", target, num_classes)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    bp, bt = class_boundaries(pred, num_classes), class_boundaries(target, num_classes)
    n_p, n_t = bp.sum((2, 3)).double(), bt.sum((2, 3)).double()                     # B x C
    precision = (bp & _within(bt, tolerance)).sum((2, 3)) / n_p.clamp(min=1)
    recall = (bt & _within(bp, tolerance)).sum((2, 3)) / n_t.clamp(min=1)
    f = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-300),
                    torch.zeros_like(precision))
    f = torch.where((n_p == 0) & (n_t == 0), torch.ones_like(f), torch.where((n_p == 0) | (n_t == 0), 0.0, f))
    present = (F.one_hot(pred, num_classes).sum((1, 2)) + F.one_hot(target, num_classes).sum((1, 2))) > 0
    return (f * present).sum(1) / present.sum(1)


def boundary_f1(pred: torch.Tensor, target: torch.Tensor, num_classes: int, tolerance: float = 2.0) -> float:
    """The mean over images of :func:`boundary_f1_per_image` (NaN for no image)."""
    per_image = boundary_f1_per_image(pred, target, num_classes, tolerance)
    return float(per_image.mean()) if per_image.numel() else float("nan")


# ---- a model over a set of images -------------------------------------------------------------
def segmentation_scores(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, num_classes: int,
                        batch_size: int = 32, ignore_index: int | None = None) -> dict[str, float]:
    """Pixel accuracy and mean IoU of ``model`` on ``images`` ``N x 3 x H x W`` / ``masks`` ``N x H x W``
    (one confusion matrix over all the images, as VOC and Cityscapes score)."""
    if images.ndim != 4 or masks.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"expected images N x 3 x H x W and masks N x H x W, got {tuple(images.shape)} "
                         f"and {tuple(masks.shape)}")
    device = next(model.parameters()).device
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            pred = model(images[i:i + batch_size].to(device)).argmax(1).cpu()
            cm += confusion_matrix(pred, masks[i:i + batch_size].cpu(), num_classes, ignore_index)
    model.train(was_training)
    return {"pixel accuracy": pixel_accuracy(cm), "mIoU": mean_over_present(per_class_iou(cm))}


def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """``N x 3 x H x W`` images -> ``N x H x W`` predicted labels (on the CPU), in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                         for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return out
