"""Fully convolutional networks: FCN-32s, FCN-16s and FCN-8s on a small VGG-like backbone.

Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015.
The backbone halves the resolution five times (strides 2, 4, 8, 16, 32). A 1x1 "score" convolution
turns the stride-32 features into ``C`` class scores, which are upsampled back to the input size:

- **FCN-32s**: one x32 upsampling of the stride-32 scores (coarse: one score per 32 x 32 block);
- **FCN-16s**: x2 upsampling, plus scores from the stride-16 features (a *skip*), then x16;
- **FCN-8s**: the same again with the stride-8 features, then x8.

Every upsampling is a ``ConvTranspose2d`` initialised to bilinear interpolation
(:class:`BilinearUpsample`) and learnt with the rest. Unlike the paper we train from scratch, so the
backbone has batch norm; the skip scores start at zero, so each model starts as an FCN-32s and
learns to use the finer features (the paper's staged training, in one run).

Shapes: input ``B x 3 x H x W`` (any H, W: padded to a multiple of 32 inside, cropped after),
output ``B x C x H x W`` scores (logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import validation
from course_utils.models.layers import conv_bn
from course_utils.ops.upsampling import bilinear_kernel as bilinear_tent


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights ``channels x channels x k x k`` (k = 2 * factor - factor % 2) of a transposed
    convolution with stride ``factor`` that upsamples each channel bilinearly (channels do not mix)."""
    validation.positive_int("factor", factor)
    validation.positive_int("channels", channels)
    tent = bilinear_tent(factor)                                    # k x k, k = 2 * factor - factor % 2
    weight = torch.zeros(channels, channels, *tent.shape)
    weight[range(channels), range(channels)] = tent
    return weight


class BilinearUpsample(nn.ConvTranspose2d):
    """``B x C x h x w -> B x C x (h*factor) x (w*factor)``: a transposed convolution (stride
    ``factor``) that starts as bilinear interpolation and can learn (``learnable=False`` freezes it).

    Away from the border (``factor`` pixels) it equals ``F.interpolate(x, scale_factor=factor,
    mode="bilinear", align_corners=False)`` exactly; at the border it treats the outside as 0.
    """

    def __init__(self, channels: int, factor: int, learnable: bool = True):
        weight = bilinear_kernel(channels, factor)  # validates the arguments
        k = weight.shape[-1]
        super().__init__(channels, channels, k, stride=factor, padding=factor // 2, bias=False)
        self.factor = factor
        with torch.no_grad():
            self.weight.copy_(weight)
        self.weight.requires_grad_(learnable)


class Backbone(nn.Module):
    """VGG-like encoder: five stages of 3x3 conv-BN-ReLU, each ending in 2x2 max pooling.

    ``forward(x)`` with ``x`` ``B x 3 x H x W`` (H, W multiples of 32) returns the pooled features
    ``[s2, s4, s8, s16, s32]``: stage ``i`` has ``channels[i]`` channels at ``H / 2**(i+1)``.
    """

    def __init__(self, width: int = 16, in_channels: int = 3, convs: tuple[int, ...] = (1, 1, 2, 2, 2)):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.channels = (width, 2 * width, 4 * width, 8 * width, 8 * width)
        stages, cin = [], in_channels
        for cout, n in zip(self.channels, convs):
            layers = [conv_bn(cin if i == 0 else cout, cout) for i in range(n)]
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple))


def _check_input(x: torch.Tensor, in_channels: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != in_channels:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected images B x {in_channels} x H x W, got {shape}")


class FCN(nn.Module):
    """FCN-32s, -16s or -8s (``variant`` = ``"32s"``, ``"16s"``, ``"8s"``) for ``num_classes`` classes.

    ``forward``: ``B x 3 x H x W -> B x num_classes x H x W`` logits.
    """

    def __init__(self, num_classes: int, variant: str = "8s", width: int = 16, in_channels: int = 3,
                 dropout: float = 0.1):
        super().__init__()
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"variant must be '32s', '16s' or '8s', got {variant!r}")
        validation.int_at_least("num_classes", num_classes, 2)
        self.variant, self.num_classes, self.in_channels = variant, num_classes, in_channels
        self.backbone = Backbone(width, in_channels)
        c = self.backbone.channels
        # "fc6" and "fc7" of the paper, already convolutional: a 3x3 and a 1x1 convolution.
        self.head = nn.Sequential(
            nn.Conv2d(c[4], 2 * c[4], 3, padding=1), nn.ReLU(inplace=True), nn.Dropout2d(dropout),
            nn.Conv2d(2 * c[4], 2 * c[4], 1), nn.ReLU(inplace=True), nn.Dropout2d(dropout),
        )
        self.score32 = nn.Conv2d(2 * c[4], num_classes, 1)
        if variant == "32s":
            self.up_final = BilinearUpsample(num_classes, 32)
        else:
            self.score16 = nn.Conv2d(c[3], num_classes, 1)
            self.up32to16 = BilinearUpsample(num_classes, 2)
            if variant == "16s":
                self.up_final = BilinearUpsample(num_classes, 16)
            else:
                self.score8 = nn.Conv2d(c[2], num_classes, 1)
                self.up16to8 = BilinearUpsample(num_classes, 2)
                self.up_final = BilinearUpsample(num_classes, 8)
        for name in ("score16", "score8"):  # skips start silent: the model starts as FCN-32s
            if hasattr(self, name):
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        h, w = x.shape[-2:]
        _, _, s8, s16, s32 = self.backbone(_pad_to(x, 32))
        scores = self.score32(self.head(s32))                       # B x C x H/32 x W/32
        if self.variant != "32s":
            scores = self.up32to16(scores) + self.score16(s16)      # B x C x H/16 x W/16
        if self.variant == "8s":
            scores = self.up16to8(scores) + self.score8(s8)         # B x C x H/8 x W/8
        return self.up_final(scores)[..., :h, :w]                   # B x C x H x W
