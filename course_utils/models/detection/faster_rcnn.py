"""A small torchvision ``FasterRCNN`` for the labs, trained from scratch on synthetic scenes.

    model = small_faster_rcnn(num_classes=4, image_size=128)        # 3 thing classes + background
    losses = model(images, targets)      # train mode: dict of the 4 losses (RPN object/box, class/box)
    detections = model(images)           # eval mode: [{"boxes": N x 4, "scores": N, "labels": N}, ...]

The pieces are torchvision's own (``AnchorGenerator``, ``RPNHead``, ``MultiScaleRoIAlign``,
``TwoMLPHead``, ``FastRCNNPredictor``), or lab 05's student's where ``pieces=...`` says so (anchors, box
coder, matcher, RoIAlign, NMS: :mod:`~course_utils.models.detection.parts`); only the backbone is ours: a
few conv + BatchNorm + ReLU layers down to stride 8 (``fpn=False``, one feature map) or stride 4/8/16
with a small feature pyramid (``fpn=True``). ``min_size = max_size = image_size`` keeps torchvision's transform from
resizing the images to 800 pixels (the default), which would make training 20x slower.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign

from course_utils import validation
from course_utils.models.detection.pieces import Pieces
from course_utils.models.detection.roi_heads import with_pieces
from course_utils.models.layers import conv_bn


class SmallBackbone(nn.Module):
    """Three stages of ``depth`` convs, widths ``w, 2w, 4w``, at strides 2, 4, 8 (``out_stride=8``) or
    2, 4, 4 with dilation 2 in the third (``out_stride=4``: finer features, same receptive field), plus
    a 4th at stride 16 (``8w``) when ``fpn``; ``out_channels`` adds a 1x1 conv to that width (no FPN).

    ``forward(x)``: ``B x 3 x H x W`` -> ``OrderedDict`` of feature maps. Without FPN: ``{"0": B x 4w x
    H/s x W/s}``; with FPN: ``{"0", "1", "2"}`` at strides 4, 8, 16, each ``fpn_channels`` wide.
    ``out_channels`` is what torchvision's ``FasterRCNN`` reads.
    """

    def __init__(self, width: int = 32, depth: int = 2, fpn: bool = False, fpn_channels: int = 64,
                 out_stride: int = 8, out_channels: int | None = None):
        super().__init__()
        validation.integer("width", width, minimum=1)
        validation.integer("depth", depth, minimum=1)
        validation.one_of("out_stride", out_stride, (4, 8))
        widths = [width, 2 * width, 4 * width] + ([8 * width] if fpn else [])
        stages, c_in = [], 3
        for i, c in enumerate(widths):
            if i == 2 and out_stride == 4 and not fpn:
                stages.append(nn.Sequential(*[conv_bn(c_in, c, dilation=2) for c_in in [c_in] + [c] * (depth - 1)]))
            else:
                stages.append(nn.Sequential(conv_bn(c_in, c, 2), *[conv_bn(c, c) for _ in range(depth - 1)]))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(widths[1:], fpn_channels) if fpn else None
        # optional 1x1 reduction: a narrower map makes the RPN conv, RoIAlign and box head cheaper
        self.reduce = None
        if out_channels is not None and not fpn:
            validation.integer("out_channels", out_channels, minimum=1)
            self.reduce = conv_bn(widths[-1], out_channels, kernel_size=1)
        self.out_channels = fpn_channels if fpn else (out_channels or widths[-1])

    @property
    def feature_names(self) -> list[str]:
        """The keys of :meth:`forward`'s feature maps (what a ``MultiScaleRoIAlign`` pools from)."""
        return ["0", "1", "2"] if self.fpn is not None else ["0"]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        if self.fpn is None:
            return OrderedDict([("0", features[-1] if self.reduce is None else self.reduce(features[-1]))])
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(features[1:])))


def small_faster_rcnn(num_classes: int, image_size: int, width: int = 32, depth: int = 2, fpn: bool = False,
                      out_stride: int = 4, out_channels: int | None = None, sampling_ratio: int = 2,
                      anchor_sizes: Sequence[int] = (12, 24, 48), aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                      representation: int = 256, rpn_batch_size: int = 64, rpn_positive_fraction: float = 0.5,
                      box_batch_size: int = 64, box_positive_fraction: float = 0.5,
                      rpn_pre_nms_top_n: tuple[int, int] = (600, 300), rpn_post_nms_top_n: tuple[int, int] = (300, 100),
                      box_score_thresh: float = 0.01, detections_per_img: int = 100,
                      detector: Callable[..., FasterRCNN] = FasterRCNN,
                      heads: Callable[[SmallBackbone], Mapping[str, Any]] | None = None,
                      pieces: Pieces | None = None) -> FasterRCNN:
    """torchvision ``FasterRCNN`` with a :class:`SmallBackbone`, for ``image_size`` pixel images.

    The defaults are lab 05's measured CPU recipe for 96-pixel scenes (stride-4 features: the shapes
    are told apart by their outlines, which a stride-8 map blurs; few sampled anchors and proposals,
    half of them positive). Scale ``anchor_sizes`` with the objects for other image sizes.

    Args:
        num_classes: including the background (labels ``1..num_classes-1`` are the things).
        image_size: the images' side; the transform keeps them at this size.
        width, depth, fpn, out_stride, out_channels: the backbone (see :class:`SmallBackbone`).
        sampling_ratio: RoIAlign samples per bin and axis in the box head (its backward pass is slow on a CPU).
        anchor_sizes: anchor sides in pixels; without FPN all on the one map, with FPN split over the
            three levels in order (``len(anchor_sizes)`` must then be a multiple of 3).
        aspect_ratios: anchor ``h / w`` ratios (torchvision's convention).
        representation: width of the box head's two fully connected layers.
        rpn_batch_size, rpn_positive_fraction: anchors sampled per image for the RPN losses.
        box_batch_size, box_positive_fraction: proposals sampled per image for the box head losses.
        rpn_pre_nms_top_n, rpn_post_nms_top_n: proposals kept (train, test) before / after the RPN's NMS.
        detector, heads: the class built and its extra keyword arguments, made from the backbone by
            ``heads(backbone)``: how :func:`~course_utils.models.detection.mask_rcnn.small_mask_rcnn`
            builds torchvision's ``MaskRCNN`` (a ``FasterRCNN`` with a mask head) on this model.
        pieces: the student's lab 05 functions (a :class:`~course_utils.models.detection.pieces.Pieces`, e.g.
            from ``choose_pieces``) run in place of torchvision's; ``None``: torchvision's model as it is.
            The parameters are the same either way (a state dict loads into both).
    """
    validation.integer("num_classes", num_classes, minimum=2)
    validation.integer("image_size", image_size, minimum=16)
    sizes = tuple(validation.integer("anchor size", s, minimum=1) for s in anchor_sizes)
    ratios = tuple(validation.number("aspect ratio", r, minimum=0, strict_minimum=True) for r in aspect_ratios)
    backbone = SmallBackbone(width, depth, fpn, out_stride=out_stride, out_channels=out_channels)
    if fpn:
        if len(sizes) % 3:
            raise ValueError(f"with fpn=True anchor_sizes is split over 3 levels: give a multiple of 3 sizes, "
                             f"got {len(sizes)}")
        k = len(sizes) // 3
        per_level = tuple(sizes[i * k:(i + 1) * k] for i in range(3))
    else:
        per_level = (sizes,)
    anchors = AnchorGenerator(per_level, (ratios,) * len(per_level))
    roi_pool = MultiScaleRoIAlign(backbone.feature_names, output_size=7, sampling_ratio=sampling_ratio)
    head = TwoMLPHead(backbone.out_channels * 7 * 7, representation)
    model = detector(
        backbone, min_size=image_size, max_size=image_size,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25],
        rpn_anchor_generator=anchors, rpn_batch_size_per_image=rpn_batch_size,
        rpn_positive_fraction=rpn_positive_fraction,
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n[0], rpn_pre_nms_top_n_test=rpn_pre_nms_top_n[1],
        rpn_post_nms_top_n_train=rpn_post_nms_top_n[0], rpn_post_nms_top_n_test=rpn_post_nms_top_n[1],
        box_roi_pool=roi_pool, box_head=head, box_predictor=FastRCNNPredictor(representation, num_classes),
        box_batch_size_per_image=box_batch_size, box_positive_fraction=box_positive_fraction,
        box_score_thresh=box_score_thresh, box_detections_per_img=detections_per_img,
        **(heads(backbone) if heads is not None else {}))
    return with_pieces(model, pieces)


def detect(model: nn.Module, images: torch.Tensor | Sequence[torch.Tensor], batch_size: int = 16) -> list[dict]:
    """Detections of a torchvision detector for ``N`` images (``N x 3 x H x W`` or a list of ``3 x H x W``),
    in eval mode without gradients: a list of ``{"boxes", "scores", "labels"}`` on the CPU."""
    validation.integer("batch_size", batch_size, minimum=1)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            batch = [im.to(device) for im in images[i:i + batch_size]]
            out += [{k: v.cpu() for k, v in d.items()} for d in model(batch)]
    model.train(was_training)
    return out
