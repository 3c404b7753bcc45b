"""Building blocks that several of the course's networks share.

- :func:`conv_bn`: convolution, BatchNorm, ReLU, the block of every backbone in the course (FCN and
  U-Net in lab 02, the R-CNN family and the small Faster R-CNN in lab 05, TinyYOLO in lab 06).
"""

from __future__ import annotations

from torch import nn

from course_utils import validation


def conv_bn(c_in: int, c_out: int, stride: int = 1, kernel_size: int = 3, dilation: int = 1) -> nn.Sequential:
    """Convolution (no bias: the BatchNorm has one), BatchNorm, ReLU, padded to keep the size at stride 1:
    ``B x c_in x H x W -> B x c_out x H/stride x W/stride``.

    ``kernel_size`` odd; ``dilation`` spreads a 3x3 kernel over ``2 * dilation + 1`` pixels (padding
    ``dilation * (kernel_size - 1) / 2``). The modules are numbered ``0`` (conv), ``1`` (BatchNorm), ``2``
    (ReLU): unpack the block (``nn.Sequential(*conv_bn(...), nn.MaxPool2d(2))``) to put more layers in it.
    """
    for name, value in (("c_in", c_in), ("c_out", c_out), ("stride", stride), ("dilation", dilation)):
        validation.integer(name, value, minimum=1)
    if validation.integer("kernel_size", kernel_size, minimum=1) % 2 == 0:
        raise ValueError(f"kernel_size must be odd (the padding keeps the block centred), got {kernel_size}")
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


__all__ = ["conv_bn"]
