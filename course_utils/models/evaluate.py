"""Scoring a segmentation model: predictions and the confusion-matrix metrics over a set of images."""

from __future__ import annotations

import torch
from torch import nn

from course_utils import metrics


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
            cm += metrics.confusion_matrix(pred, masks[i:i + batch_size].cpu(), num_classes, ignore_index)
    model.train(was_training)
    iou = metrics.per_class_iou(cm)
    return {"pixel accuracy": metrics.pixel_accuracy(cm), "mIoU": float(iou[~iou.isnan()].mean())}


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
