"""A tiny YOLOv1-style detector for lab 06: one network pass per image, one prediction grid.

    model = TinyYOLO(num_classes=3, grid=12)                        # 96-pixel images: stride 8
    pred = model(images)                                            # N x 12 x 12 x (5*2 + 3), activated
    terms = yolo_loss_terms(pred, grid_targets(targets, 12, 3, 96)) # ops.yolo, data.yolo
    detections = yolo_detect(model, images)                        # [{"boxes", "scores", "labels"}, ...]

The loss, the targets and the decoding are the references of :mod:`course_utils.ops.yolo` (the
layout per cell is ``B`` predictors ``(x, y, w, h, confidence)``, then ``C`` class probabilities).
This module adds the network and detection in the scenes' label convention, so that YOLO and lab 05's
Faster R-CNN are scored by the same ``box_map``; the grid targets of the course's scenes and the
training batches are data: :mod:`course_utils.data.yolo`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from course_utils import validation
from course_utils.models.layers import conv_bn
from course_utils.ops import yolo as yolo_ops


class TinyYOLO(nn.Module):
    """Backbone of ``conv_bn`` stages down to ``stride``, then a grid head: ``N x S x S x (5B + C)``.

    Args:
        num_classes: ``C`` (no background class).
        grid: ``S``; the images must be ``S * stride`` pixels on each side.
        num_boxes: ``B`` predictors per cell.
        width: channels of the first stage; each stage doubles them (capped at ``8 * width``).
        stride: total stride, a power of 2 >= 2 (``log2(stride)`` stages of a stride-2 ``conv_bn``
            followed by ``depth - 1`` stride-1 ones; the first stage has a single conv, for speed).
        depth: convs per stage (after the first stage).
        head_width: channels of the head's 3x3 conv (default: those of the last stage).

    ``forward(images)``: ``N x 3 x H x W`` in ``[0, 1]`` -> ``N x S x S x (5B + C)`` **after** the
    activations, so that :func:`~course_utils.ops.yolo.yolo_loss_terms` and
    :func:`~course_utils.ops.yolo.decode` take the output as it is:

    - sigmoid on ``x, y``: the centre lies inside its cell (0 .. 1);
    - sigmoid on ``w, h``: a box is at most the image (0 .. 1), and never negative, so the loss's
      square roots see positive sizes;
    - sigmoid on the confidence: it is trained towards an IoU (0 .. 1);
    - softmax on the ``C`` class scores: they are ``P(class | object)`` and sum to 1.
    """

    def __init__(self, num_classes: int, grid: int, num_boxes: int = 2, width: int = 32, stride: int = 8,
                 depth: int = 2, head_width: int | None = None):
        super().__init__()
        self.num_classes = validation.positive_int("num_classes", num_classes)
        self.grid = validation.positive_int("grid", grid)
        self.num_boxes = validation.positive_int("num_boxes", num_boxes)
        validation.positive_int("width", width)
        validation.positive_int("depth", depth)
        self.stride = validation.integer("stride", stride, minimum=2)
        if stride & (stride - 1):
            raise ValueError(f"stride must be a power of 2 (each stage halves the image), got {stride}")
        layers, c_in = [], 3
        for i in range(stride.bit_length() - 1):
            c = min(width * 2**i, 8 * width)
            layers += [conv_bn(c_in, c, 2)] + [conv_bn(c, c) for _ in range(depth - 1 if i else 0)]
            c_in = c
        self.backbone = nn.Sequential(*layers)
        head_width = validation.positive_int("head_width", head_width or c_in)
        self.head = nn.Sequential(conv_bn(c_in, head_width), nn.Conv2d(head_width, 5 * num_boxes + num_classes, 1))

    @property
    def image_size(self) -> int:
        """The side of the images this model takes: ``grid * stride`` pixels."""
        return self.grid * self.stride

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        validation.images("images", images)
        if images.shape[1] != 3:
            raise ValueError(f"images must have 3 channels (RGB), got {images.shape[1]} (shape {tuple(images.shape)})")
        h, w = images.shape[2:]
        if h % self.stride or w % self.stride or (h // self.stride, w // self.stride) != (self.grid, self.grid):
            raise ValueError(f"TinyYOLO(grid={self.grid}, stride={self.stride}) takes {self.image_size} x "
                             f"{self.image_size} images (grid x stride, a multiple of the stride {self.stride}), "
                             f"got {h} x {w}; pick grid = image side / stride")
        out = self.head(self.backbone(images)).permute(0, 2, 3, 1)            # N x S x S x (5B + C)
        b = 5 * self.num_boxes
        boxes = torch.sigmoid(out[..., :b])                                    # x, y, w, h, confidence
        classes = torch.softmax(out[..., b:], dim=-1)
        return torch.cat([boxes, classes], -1)


def yolo_detect(model: nn.Module, images: torch.Tensor | Sequence[torch.Tensor], score_threshold: float = 0.2,
                iou_threshold: float = 0.5, batch_size: int = 16,
                decode_fn: Callable[..., dict] | None = None) -> list[dict]:
    """Detections of a YOLO model for ``N`` images (``N x 3 x H x W`` or a list of ``3 x H x W``), like
    lab 05's ``detect``: eval mode (the mode is restored after), no gradients, a list of ``{"boxes"
    K x 4, "scores" K, "labels" K}`` on the CPU, with labels in the **scenes' convention** ``1 .. C``.

    ``decode_fn(pred S x S x (5B + C), num_classes, image_size, score_threshold, iou_threshold)``
    decodes one image (default :func:`course_utils.ops.yolo.decode`; labels ``0 .. C-1``).
    """
    validation.positive_int("batch_size", batch_size)
    decode_fn = decode_fn or yolo_ops.decode
    num_classes = validation.positive_int("model.num_classes", model.num_classes)
    if not len(images):
        return []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                chunk = images[i:i + batch_size]
                batch = (chunk if isinstance(chunk, torch.Tensor) else torch.stack(list(chunk))).to(device)
                preds = model(batch).float().cpu()                      # decode on the CPU: small tensors
                for pred in preds:
                    image_size = (batch.shape[2], batch.shape[3])
                    d = decode_fn(pred, num_classes, image_size, score_threshold, iou_threshold)
                    out.append({"boxes": d["boxes"].cpu(), "scores": d["scores"].cpu(),
                                "labels": d["labels"].cpu() + 1})
    finally:
        model.train(was_training)
    return out
