"""Lab 07's small torchvision ``MaskRCNN`` and ``KeypointRCNN``: lab 05's Faster R-CNN plus a head per RoI.

    model = small_mask_rcnn(num_classes=4, image_size=96)            # 3 thing classes + background
    losses = model(images, targets)   # train: the Faster R-CNN's 4 losses + "loss_mask"
    detections = model(images)        # eval: + "masks" N x 1 x H x W (probabilities; see instance_masks)
    model = small_mask_rcnn(4, 96, pieces=choose_pieces(mask_targets=..., mask_loss=..., paste_masks=...))

    model = small_keypoint_rcnn(num_classes=2, num_keypoints=9, image_size=96)
    detections = model(images)        # + "keypoints" N x J x 3 (x, y, 1), "keypoints_scores" N x J

Both are lab 05's :func:`~course_utils.models.detection.faster_rcnn.small_faster_rcnn` (same backbone,
RPN and box head; any of its keyword arguments) with torchvision's heads at small widths: RoIAlign of
the features to ``14 x 14`` per detection, a few 3x3 convs, then a transposed conv to ``28 x 28`` and a
1x1 conv to one mask per class (``MaskRCNNHeads``, ``MaskRCNNPredictor``), or a transposed conv and a
2x upsampling to one ``56 x 56`` heatmap per keypoint (``KeypointRCNNHeads``, ``KeypointRCNNPredictor``).
``pieces`` runs the student's functions inside the model (:mod:`~course_utils.models.detection.roi_heads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import KeypointRCNN, MaskRCNN
from torchvision.models.detection.keypoint_rcnn import (
    KeypointRCNNHeads,
    KeypointRCNNPredictor,
)
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from course_utils import validation
from course_utils.models.detection.faster_rcnn import SmallBackbone, small_faster_rcnn
from course_utils.models.detection.pieces import Pieces
from course_utils.models.detection.roi_heads import with_pieces


def _head_widths(name: str, widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(widths)
    if not widths:
        raise ValueError(f"{name} must list at least one conv width, e.g. (64, 64)")
    return tuple(validation.integer(f"{name} width", w, minimum=1) for w in widths)


def small_mask_rcnn(num_classes: int, image_size: int, mask_layers: Sequence[int] = (64, 64),
                    mask_sampling_ratio: int = 2, pieces: Pieces | None = None, mask_threshold: float = 0.5,
                    **detector: Any) -> MaskRCNN:
    """torchvision ``MaskRCNN`` on lab 05's small Faster R-CNN, for ``image_size`` pixel images.

    Args:
        num_classes: including the background (labels ``1..num_classes-1`` are the things).
        image_size: the images' side; the transform keeps them at this size.
        mask_layers: widths of the mask head's 3x3 convs on the ``14 x 14`` RoIAlign features; the last
            is also the width of the transposed conv that makes them ``28 x 28``.
        mask_sampling_ratio: RoIAlign samples per bin and axis in the mask head.
        pieces: the student's ``mask_targets``, ``mask_loss``, ``paste_masks`` (a
            :class:`~course_utils.models.detection.pieces.Pieces`), run in place of torchvision's;
            ``None``: torchvision's model as it is.
        mask_threshold: the threshold handed to ``pieces.paste_masks`` (with that piece the model returns
            0/1 masks; without it torchvision's probabilities).
        detector: any keyword argument of :func:`~course_utils.models.detection.faster_rcnn.small_faster_rcnn`
            (backbone, anchors, sampling, box head).
    """
    layers = _head_widths("mask_layers", mask_layers)
    validation.integer("mask_sampling_ratio", mask_sampling_ratio, minimum=1)
    validation.number("mask_threshold", mask_threshold, minimum=0, maximum=1)

    def heads(backbone: SmallBackbone) -> dict[str, nn.Module]:
        return {"mask_roi_pool": MultiScaleRoIAlign(backbone.feature_names, 14, mask_sampling_ratio),
                "mask_head": MaskRCNNHeads(backbone.out_channels, layers, 1),
                "mask_predictor": MaskRCNNPredictor(layers[-1], layers[-1], num_classes)}

    model = small_faster_rcnn(num_classes, image_size, detector=MaskRCNN, heads=heads, **detector)
    return with_pieces(model, pieces, mask_threshold)


def small_keypoint_rcnn(num_classes: int, num_keypoints: int, image_size: int,
                        keypoint_layers: Sequence[int] = (64, 64, 64, 64), keypoint_sampling_ratio: int = 2,
                        pieces: Pieces | None = None, **detector: Any) -> KeypointRCNN:
    """torchvision ``KeypointRCNN`` on lab 05's small Faster R-CNN: ``num_keypoints`` heatmaps of
    ``56 x 56`` per detection (softmax over the cells; the arg-max is the keypoint).

    Args:
        num_classes: including the background (torchvision's keypoint model has one thing class: 2).
        num_keypoints: the joints ``J`` of each object.
        image_size: the images' side.
        keypoint_layers: widths of the keypoint head's 3x3 convs on the ``14 x 14`` RoIAlign features.
        keypoint_sampling_ratio: RoIAlign samples per bin and axis in the keypoint head.
        pieces: the student's ``keypoint_targets`` (a :class:`~course_utils.models.detection.pieces.Pieces`).
        detector: any keyword argument of :func:`~course_utils.models.detection.faster_rcnn.small_faster_rcnn`.
    """
    validation.integer("num_keypoints", num_keypoints, minimum=1)
    layers = _head_widths("keypoint_layers", keypoint_layers)
    validation.integer("keypoint_sampling_ratio", keypoint_sampling_ratio, minimum=1)

    def heads(backbone: SmallBackbone) -> dict[str, Any]:
        return {"keypoint_roi_pool": MultiScaleRoIAlign(backbone.feature_names, 14, keypoint_sampling_ratio),
                "keypoint_head": KeypointRCNNHeads(backbone.out_channels, layers),
                "keypoint_predictor": KeypointRCNNPredictor(layers[-1], num_keypoints)}

    model = small_faster_rcnn(num_classes, image_size, detector=KeypointRCNN, heads=heads, **detector)
    return with_pieces(model, pieces)


def instance_masks(detections: Sequence[dict[str, torch.Tensor]],
                   threshold: float = 0.5) -> list[dict[str, torch.Tensor]]:
    """Detections with ``masks`` as ``N x H x W`` bool (``N x 1 x H x W`` probabilities or 0/1 values
    ``> threshold``), what torchmetrics' ``segm`` mAP and the mask IoU take; other keys as they are."""
    validation.number("threshold", threshold, minimum=0, maximum=1)
    out = []
    for i, d in enumerate(detections):
        if not isinstance(d, dict) or "masks" not in d:
            raise ValueError(f"detections[{i}] must be a dict with 'masks' (a Mask R-CNN's output), got "
                             f"{sorted(d) if isinstance(d, dict) else type(d).__name__}")
        masks = validation.tensor(f"detections[{i}]['masks']", d["masks"], ndim=(3, 4))
        if masks.ndim == 4:
            if masks.shape[1] != 1:
                raise ValueError(f"detections[{i}]['masks'] must be N x 1 x H x W or N x H x W, got shape "
                                 f"{tuple(masks.shape)}")
            masks = masks[:, 0]
        out.append(dict(d, masks=masks > threshold if masks.dtype != torch.bool else masks))
    return out


__all__ = ["instance_masks", "small_keypoint_rcnn", "small_mask_rcnn"]
