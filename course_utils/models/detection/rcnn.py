"""Tiny R-CNN-style and Fast R-CNN-style detectors, for lab 05's measured speed comparison.

Both score given proposals (e.g. from :func:`course_utils.ops.proposals.selective_search`): for ``B``
images ``B x 3 x H x W`` and a list of ``K_i x 4`` XYXY proposals per image they return class logits
``K x C`` and box deltas ``K x 4C`` (``K = sum K_i``; one box per class, coded with weights
``(10, 10, 5, 5)`` as torchvision's box head).

- :class:`RCNN` (Girshick et al. 2014): crop and warp every proposal out of the *image* to
  ``crop_size x crop_size`` and run the CNN once *per proposal*: the cost grows with ``K``.
- :class:`FastRCNN` (Girshick 2015): run the CNN once per *image*, then RoI-pool each proposal's
  projection on the stride-8 feature map to ``7 x 7`` and run only a small head per proposal.

:func:`proposal_targets` and :func:`detection_loss` train either one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align, roi_pool

from course_utils import validation
from course_utils.models.layers import conv_bn
from course_utils.ops.box_coder import encode
from course_utils.ops.matcher import match
from course_utils.structures.boxes import box_iou

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def _cnn(width: int) -> nn.Sequential:
    """Three conv + BN + ReLU stages, each halving the size: ``B x 3 x H x W -> B x 4w x H/8 x W/8``."""
    layers, c_in = [], 3
    for c in (width, 2 * width, 4 * width):
        layers += [*conv_bn(c_in, c), nn.MaxPool2d(2)]
        c_in = c
    return nn.Sequential(*layers)


def _check(images: torch.Tensor, proposals: list[torch.Tensor]) -> None:
    validation.images("images", images)
    if not isinstance(proposals, (list, tuple)) or len(proposals) != images.shape[0]:
        raise ValueError(f"proposals must be a list with one K_i x 4 tensor per image ({images.shape[0]} images)")
    for i, p in enumerate(proposals):
        validation.boxes(f"proposals[{i}]", p)


class _Head(nn.Module):
    """``K x D`` features -> class logits ``K x C`` and box deltas ``K x 4C``."""

    def __init__(self, features: int, num_classes: int, hidden: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(inplace=True))
        self.cls, self.box = nn.Linear(hidden, num_classes), nn.Linear(hidden, 4 * num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.fc(x)
        return self.cls(x), self.box(x)


class RCNN(nn.Module):
    """Per-proposal CNN on crops warped to ``crop_size`` (a multiple of 8)."""

    def __init__(self, num_classes: int, crop_size: int = 32, width: int = 16, hidden: int = 128):
        super().__init__()
        validation.integer("num_classes", num_classes, minimum=2)
        if validation.integer("crop_size", crop_size, minimum=8) % 8:
            raise ValueError(f"crop_size must be a multiple of 8, got {crop_size}")
        self.crop_size, self.cnn = crop_size, _cnn(width)
        self.head = _Head(4 * width * (crop_size // 8) ** 2, num_classes, hidden)

    def forward(self, images: torch.Tensor, proposals: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        _check(images, proposals)
        crops = roi_align(images, proposals, self.crop_size, 1.0, sampling_ratio=2, aligned=True)  # K x 3 x S x S
        return self.head(self.cnn(crops))


class FastRCNN(nn.Module):
    """CNN once per image (stride 8), RoI pooling to ``output_size``, a small head per proposal."""

    def __init__(self, num_classes: int, width: int = 16, hidden: int = 128, output_size: int = 7,
                 pooling: str = "roi_pool"):
        super().__init__()
        validation.integer("num_classes", num_classes, minimum=2)
        self.output_size = validation.integer("output_size", output_size, minimum=1)
        self.pooling = validation.one_of("pooling", pooling, ("roi_pool", "roi_align"))
        self.cnn = _cnn(width)
        self.head = _Head(4 * width * output_size**2, num_classes, hidden)

    def forward(self, images: torch.Tensor, proposals: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        _check(images, proposals)
        features = self.cnn(images)
        if self.pooling == "roi_pool":
            pooled = roi_pool(features, proposals, self.output_size, 1 / 8)
        else:
            pooled = roi_align(features, proposals, self.output_size, 1 / 8, sampling_ratio=2, aligned=True)
        return self.head(pooled)


def proposal_targets(proposals: list[torch.Tensor], targets: list[dict[str, torch.Tensor]],
                     fg_iou: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Training targets of the proposals: labels ``K`` int64 (0 = background: best IoU ``< fg_iou``) and
    box codes ``K x 4`` of each proposal's best-matching ground-truth box (weights ``(10, 10, 5, 5)``)."""
    labels, codes = [], []
    for p, t in zip(proposals, targets):
        if len(t["boxes"]) == 0:
            labels.append(torch.zeros(len(p), dtype=torch.int64, device=p.device))
            codes.append(torch.zeros(len(p), 4, device=p.device))
            continue
        m = match(box_iou(t["boxes"], p), fg_iou, fg_iou)
        labels.append(torch.where(m >= 0, t["labels"][m.clamp(min=0)], torch.zeros_like(m)))
        codes.append(encode(t["boxes"][m.clamp(min=0)], p, BOX_WEIGHTS))
    return torch.cat(labels), torch.cat(codes)


def detection_loss(class_logits: torch.Tensor, box_deltas: torch.Tensor, labels: torch.Tensor,
                   box_codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fast R-CNN's multitask loss, as torchvision's ``fastrcnn_loss``: cross-entropy over all proposals,
    smooth L1 (beta 1/9) on the true class's deltas of the foreground ones, divided by ``K``."""
    loss_classifier = F.cross_entropy(class_logits, labels)
    fg = torch.where(labels > 0)[0]
    deltas = box_deltas.reshape(len(labels), -1, 4)[fg, labels[fg]]
    loss_box = F.smooth_l1_loss(deltas, box_codes[fg], beta=1 / 9, reduction="sum") / max(1, labels.numel())
    return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box}
