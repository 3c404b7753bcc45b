"""Context for dense prediction (lab 09): a dilated backbone, DeepLab v3's ASPP head and PSPNet's pyramid
pooling head, on lab 02's VGG-like backbone.

- :class:`DilatedBackbone`: lab 02's :class:`~course_utils.models.segmentation.fcn.Backbone` with its last two
  max poolings removed and the convolutions after them dilated (by 2 after the first removed pooling, and by 4
  in the head after the second), as DeepLab v1 does to VGG-16 (Chen et al., ICLR 2015): output stride 8 instead
  of 32, the same parameters, the same receptive field in input pixels.
- :class:`DeepLab`: the dilated backbone, then torchvision's ``ASPP`` (DeepLab v3, Chen et al. 2017: a 1x1
  convolution, three 3x3 convolutions with dilation ``rates``, and image-level pooling, concatenated and
  projected by a 1x1 convolution), a 1x1 classifier, and bilinear upsampling by 8.
- :class:`PSPNet`: the same backbone, PSPNet's pyramid pooling module (Zhao et al., CVPR 2017: the features
  average-pooled to ``b x b`` bins for each ``b`` in ``bins``, a 1x1 convolution per level, upsampled back and
  concatenated with the features), a 3x3 convolution, a 1x1 classifier, and bilinear upsampling by 8. The
  pooling itself is a function (``pool``, default :func:`course_utils.ops.context.pyramid_pool`): lab 09 plugs in
  the students' own.

Shapes: input ``B x 3 x H x W`` (padded inside to a multiple of 8, cropped after), output ``B x C x H x W``
logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from course_utils import validation
from course_utils.models.layers import conv_bn
from course_utils.models.segmentation.fcn import Backbone, _check_input, _pad_to
from course_utils.ops.context import pyramid_pool

OUTPUT_STRIDE = 8


class DilatedBackbone(nn.Module):
    """Lab 02's five-stage backbone at output stride 8: stages 4 and 5 keep the resolution (no max pooling) and
    stage 5's convolutions are dilated by 2, so that each of them sees the input pixels it saw with the poolings.

    ``forward(x)`` (H, W multiples of 8) returns the stage-5 features ``B x channels[4] x H/8 x W/8``.
    """

    def __init__(self, width: int = 16, in_channels: int = 3, convs: tuple[int, ...] = (1, 1, 2, 2, 2)):
        super().__init__()
        plain = Backbone(width, in_channels, convs)
        self.channels = plain.channels
        stages = []
        for i, stage in enumerate(plain.stages):
            layers = list(stage.children())
            if i >= 3:
                layers = layers[:-1]                                 # no pool4, no pool5: stride stays 8
            if i == 4:
                for block in layers:                                 # conv5: dilation 2 (pool4 removed)
                    for conv in block.modules():
                        if isinstance(conv, nn.Conv2d):
                            conv.dilation, conv.padding = (2, 2), (2, 2)
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


class _Segmenter(nn.Module):
    """Backbone -> head -> bilinear upsampling by 8, for any input size."""

    def __init__(self, num_classes: int, width: int, in_channels: int):
        super().__init__()
        validation.int_at_least("num_classes", num_classes, 2)
        validation.positive_int("width", width)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.backbone = DilatedBackbone(width, in_channels)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        h, w = x.shape[-2:]
        padded = _pad_to(x, OUTPUT_STRIDE)
        scores = self.head(self.backbone(padded))                      # B x C x H/8 x W/8
        up = F.interpolate(scores, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return up[..., :h, :w]


class DeepLab(_Segmenter):
    """DeepLab v3 style: dilated backbone (output stride 8), ASPP with dilation ``rates`` and image pooling
    (``aspp_channels`` per branch), a 1x1 classifier, bilinear upsampling. ``B x 3 x H x W -> B x C x H x W``."""

    def __init__(self, num_classes: int, width: int = 16, rates: Sequence[int] = (2, 4, 6),
                 aspp_channels: int | None = None, in_channels: int = 3):
        super().__init__(num_classes, width, in_channels)
        rates = tuple(rates)
        if not rates or not all(isinstance(r, int) and r >= 1 for r in rates):
            raise ValueError(f"rates must be positive ints (the ASPP's dilations), got {rates!r}")
        c = self.backbone.channels[4]
        out = aspp_channels or c
        validation.positive_int("aspp_channels", out)
        self.rates = rates
        self.aspp = ASPP(c, rates, out)
        self.classifier = nn.Conv2d(out, num_classes, 1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.aspp(features))


PoolFn = Callable[[torch.Tensor, Sequence[nn.Module] | nn.ModuleList, Sequence[int]], torch.Tensor]


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module: ``B x C x h x w -> B x 2C x h x w`` (the features, then one
    ``C / len(bins)``-channel map per level). The layers live here; ``pool(x, self.convs, self.bins)`` runs them."""

    def __init__(self, channels: int, bins: Sequence[int] = (1, 2, 3, 6), pool: PoolFn = pyramid_pool):
        super().__init__()
        bins = tuple(bins)
        if not bins or not all(isinstance(b, int) and b >= 1 for b in bins):
            raise ValueError(f"bins must be positive ints, got {bins!r}")
        if channels % len(bins):
            raise ValueError(f"channels ({channels}) must be divisible by the number of levels ({len(bins)})")
        self.bins, self.pool = bins, pool
        reduced = channels // len(bins)
        self.convs = nn.ModuleList(nn.Sequential(nn.Conv2d(channels, reduced, 1, bias=False), nn.BatchNorm2d(reduced),
                                                 nn.ReLU(inplace=True)) for _ in bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x, self.convs, self.bins)


class PSPNet(_Segmenter):
    """PSPNet style: dilated backbone (output stride 8), pyramid pooling over ``bins``, a 3x3 conv-BN-ReLU, a
    1x1 classifier, bilinear upsampling. ``pool`` runs the pyramid pooling (default: the course's)."""

    def __init__(self, num_classes: int, width: int = 16, bins: Sequence[int] = (1, 2, 3, 6),
                 pool: PoolFn = pyramid_pool, in_channels: int = 3, dropout: float = 0.1):
        super().__init__(num_classes, width, in_channels)
        c = self.backbone.channels[4]
        self.ppm = PyramidPooling(c, bins, pool)
        self.fuse = nn.Sequential(conv_bn(2 * c, c), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(c, num_classes, 1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.fuse(self.ppm(features)))
