"""Context at a fixed cost (lab 09): dilated ("atrous") convolution and PSPNet's pyramid pooling.

- :func:`dilated_conv2d`: a 2-D convolution whose kernel taps are ``dilation`` pixels apart (Yu & Koltun 2016;
  DeepLab's "atrous" convolution, Chen et al. 2015): a ``k x k`` kernel spans ``d (k - 1) + 1`` pixels with
  ``k^2`` weights. ``padding="same"`` keeps the size: ``d (k - 1)`` zeros per axis, ``d (k - 1) // 2`` before
  and the rest after (PyTorch's convention for ``padding="same"``).
- :func:`pyramid_pool`: PSPNet's pyramid pooling module (Zhao et al., CVPR 2017) run with given layers.

Both are the references of the lab's exercises; ``tests/test_lab09.py`` holds :func:`dilated_conv2d` (``F.unfold``
and a matrix product) equal to ``F.conv2d``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import validation


def int_pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each ``>= minimum``, as a pair ``(rows, columns)``."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be an int or a pair of ints (rows, columns), got {value!r}")
    return validation.integer(f"{name}[0]", pair[0], minimum), validation.integer(f"{name}[1]", pair[1], minimum)


def same_padding(kernel_size: int, dilation: int) -> tuple[int, int]:
    """Zeros ``(before, after)`` along one axis that keep the size for a stride-1 kernel of ``kernel_size``
    taps ``dilation`` apart: ``d (k - 1)`` in all, the extra one (even spans) after."""
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


def conv_padding(weight_shape: Sequence[int], dilation: tuple[int, int],
                 padding: int | tuple[int, int] | str) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zeros for ``padding`` (an int, a pair, or ``"same"``)."""
    kh, kw = weight_shape[-2:]
    if isinstance(padding, str):
        validation.one_of("padding", padding, ("same",))
        top, bottom = same_padding(kh, dilation[0])
        left, right = same_padding(kw, dilation[1])
        return left, right, top, bottom
    ph, pw = int_pair("padding", padding, 0)
    return pw, pw, ph, ph


def check_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """``x`` ``B x C x H x W`` float, ``weight`` ``O x C x kh x kw`` of the same dtype, ``bias`` ``O`` or None."""
    validation.images("x", x)
    validation.tensor("weight", weight, ndim=4, dtypes="float")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight must be O x C x kh x kw with C = {x.shape[1]} (x's channels), got shape "
                         f"{tuple(weight.shape)}")
    if 0 in weight.shape:
        raise ValueError(f"weight has an empty dimension: shape {tuple(weight.shape)}")
    if weight.dtype != x.dtype:
        raise TypeError(f"x and weight must have the same dtype, got {x.dtype} and {weight.dtype}")
    if bias is not None:
        validation.tensor("bias", bias, ndim=1, dtypes="float")
        if bias.shape[0] != weight.shape[0] or bias.dtype != x.dtype:
            raise ValueError(f"bias must be a {x.dtype} vector of {weight.shape[0]} (one per output channel), got "
                             f"{bias.dtype} of shape {tuple(bias.shape)}")


def dilated_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   dilation: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0) -> torch.Tensor:
    """Stride-1 convolution (cross-correlation) with a dilated kernel.

    Args:
        x: ``B x C x H x W``.
        weight: ``O x C x kh x kw``; tap ``(i, j)`` reads the input ``dilation`` pixels apart.
        bias: ``O`` or ``None``.
        dilation: ``d`` or ``(d_rows, d_cols)``, each ``>= 1``.
        padding: zeros around the input: ``p``, ``(p_rows, p_cols)`` or ``"same"`` (the output has ``x``'s size).

    Returns:
        ``B x O x H' x W'`` with ``H' = H + pad_rows - d_rows (kh - 1)`` (likewise ``W'``).
    """
    check_conv(x, weight, bias)
    dil = int_pair("dilation", dilation, 1)
    left, right, top, bottom = conv_padding(weight.shape, dil, padding)
    out_h = x.shape[2] + top + bottom - dil[0] * (weight.shape[2] - 1)
    out_w = x.shape[3] + left + right - dil[1] * (weight.shape[3] - 1)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"the dilated kernel spans {dil[0] * (weight.shape[2] - 1) + 1} x "
                         f"{dil[1] * (weight.shape[3] - 1) + 1} pixels, more than the padded input "
                         f"{x.shape[2] + top + bottom} x {x.shape[3] + left + right}")
    o, _, kh, kw = weight.shape
    columns = F.unfold(F.pad(x, (left, right, top, bottom)), (kh, kw), dilation=dil)    # B x C kh kw x H' W'
    out = weight.reshape(o, -1) @ columns                                                  # B x O x H' W'
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(x.shape[0], o, out_h, out_w)


def pyramid_pool(x: torch.Tensor, convs: Sequence[nn.Module] | nn.ModuleList,
                 bins: Sequence[int] = (1, 2, 3, 6)) -> torch.Tensor:
    """PSPNet's pyramid pooling with given layers.

    For each level ``b`` (with its layer ``convs[k]``): average-pool ``x`` to ``b x b`` bins
    (``F.adaptive_avg_pool2d``: bin ``i`` covers rows ``floor(i H / b) .. ceil((i + 1) H / b) - 1``), apply the
    layer, and upsample bilinearly back to ``H x W`` (``align_corners=False``, as torchvision's ASPP pooling).

    Args:
        x: features ``B x C x H x W``.
        convs: one layer per level, each ``B x C x b x b -> B x C_k x b x b`` (e.g. 1x1 conv, BN, ReLU).
        bins: the levels (PSPNet: 1, 2, 3, 6).

    Returns:
        ``B x (C + sum C_k) x H x W``: ``x`` followed by the upsampled levels, in the order of ``bins``.
    """
    validation.images("x", x)
    bins = tuple(bins)
    if not bins or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in bins):
        raise ValueError(f"bins must be a non-empty sequence of positive ints, got {bins!r}")
    if len(convs) != len(bins):
        raise ValueError(f"expected one layer per level: {len(bins)} bins but {len(convs)} layers")
    size = x.shape[-2:]
    levels = [F.interpolate(conv(F.adaptive_avg_pool2d(x, b)), size=size, mode="bilinear", align_corners=False)
              for conv, b in zip(convs, bins)]
    return torch.cat([x, *levels], 1)
