"""A small U-Net (Ronneberger, Fischer & Brox, MICCAI 2015): the encoder-decoder family.

The encoder halves the resolution ``depth`` times; the decoder doubles it back with transposed
convolutions and, at each scale, concatenates the encoder's features of that scale (the skip
connections) before two 3x3 convolutions. SegNet (Badrinarayanan et al., 2017) and the
deconvolution network of Noh et al. (2015) have the same shape but pass pooling indices instead.

Shapes: ``B x in_channels x H x W -> B x num_classes x H x W`` logits (H, W padded inside to a
multiple of ``2**depth``, the output cropped back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import validation
from course_utils.models.layers import conv_bn
from course_utils.models.segmentation.fcn import BilinearUpsample, _check_input


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two :func:`conv_bn` blocks in one flat ``Sequential``: ``B x cin x H x W -> B x cout x H x W``."""
    return nn.Sequential(*conv_bn(cin, cout), *conv_bn(cout, cout))


class UNet(nn.Module):
    """U-Net with ``depth`` down/up steps; channels ``width * 2**i`` at scale ``i``."""

    def __init__(self, num_classes: int, width: int = 16, depth: int = 4, in_channels: int = 3):
        super().__init__()
        validation.int_at_least("num_classes", num_classes, 2)
        if not 1 <= depth <= 6:
            raise ValueError(f"depth must be in 1..6, got {depth}")
        self.num_classes, self.depth, self.in_channels = num_classes, depth, in_channels
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([double_conv(in_channels, chans[0])] +
                                  [double_conv(chans[i], chans[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for i in reversed(range(depth)):
            # Halve the channels with a 1x1 conv, then upsample x2 (bilinear-initialised, learnt).
            self.up.append(nn.Sequential(nn.Conv2d(chans[i + 1], chans[i], 1), BilinearUpsample(chans[i], 2)))
            self.merge.append(double_conv(2 * chans[i], chans[i]))
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        h, w = x.shape[-2:]
        m = 2**self.depth
        x = F.pad(x, (0, -w % m, 0, -h % m))
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))           # B x width*2^i x H/2^i x W/2^i
            skips.append(x)
        skips.pop()                                                  # the bottom is not a skip
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], 1))
        return self.classifier(x)[..., :h, :w]                       # B x C x H x W
