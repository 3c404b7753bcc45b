"""Deformable convolution v1 (Dai et al., "Deformable Convolutional Networks", ICCV 2017), with torchvision's
conventions.

A ``kh x kw`` convolution reads, for output ``(y, x)`` and tap ``k = i * kw + j``, the input at

    p = (y * stride - padding + i * dilation + dy_k,  x * stride - padding + j * dilation + dx_k)

where the offsets come from the tensor ``offset`` ``B x 2 kh kw x H' x W'``: channel ``2k`` is ``dy_k`` (rows)
and ``2k + 1`` is ``dx_k`` (columns), at output position ``(y, x)``. A position between pixels is read with
bilinear interpolation, pixels outside the image being 0 (a position one pixel or more outside reads 0). The
sampled values are weighted by ``weight[o, c, i, j]`` and summed, as in a convolution. With zero offsets it is
the plain convolution.

:func:`deform_conv2d` is written out (positions, :func:`bilinear_zero`, an einsum); ``tests/test_lab09.py`` holds it
equal to ``torchvision.ops.deform_conv2d`` (v1: no mask, one offset group, no weight groups), value and gradients.
"""

from __future__ import annotations

import torch

from course_utils.ops.context import check_conv, int_pair


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Outputs along one axis: ``(size + 2 padding - dilation (kernel - 1) - 1) // stride + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_deform(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 stride: object, padding: object, dilation: object) -> tuple[tuple[int, int], ...]:
    """Validate the arguments of :func:`deform_conv2d`; returns ``(stride, padding, dilation)`` as pairs."""
    check_conv(x, weight, bias)
    s, p, d = int_pair("stride", stride, 1), int_pair("padding", padding, 0), int_pair("dilation", dilation, 1)
    kh, kw = weight.shape[-2:]
    out = (output_size(x.shape[2], kh, s[0], p[0], d[0]), output_size(x.shape[3], kw, s[1], p[1], d[1]))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"the {kh} x {kw} kernel (dilation {d}) does not fit the padded {x.shape[2]} x {x.shape[3]} "
                         f"input (padding {p})")
    want = (x.shape[0], 2 * kh * kw, *out)
    if not isinstance(offset, torch.Tensor) or tuple(offset.shape) != want:
        got = tuple(offset.shape) if isinstance(offset, torch.Tensor) else type(offset).__name__
        raise ValueError(f"offset must be B x 2*kh*kw x H' x W' = {want} (dy, dx for each of the {kh * kw} taps at "
                         f"each output position), got {got}")
    if offset.dtype != x.dtype:
        raise TypeError(f"offset must have x's dtype {x.dtype}, got {offset.dtype}")
    return s, p, d


def bilinear_zero(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``x`` ``B x C x H x W`` read at real positions ``rows``, ``cols`` (``B x ...``, the same shape) with bilinear
    interpolation, pixels outside the image being 0: ``B x C x ...``. Differentiable in ``x`` and the positions."""
    b, c, h, w = x.shape
    r0, c0 = rows.floor(), cols.floor()
    a, t = rows - r0, cols - c0                                       # fractional parts, in [0, 1)
    flat = x.reshape(b, c, h * w)
    out = x.new_zeros(b, c, *rows.shape[1:])
    for dr, wr in ((0, 1 - a), (1, a)):
        for dc, wc in ((0, 1 - t), (1, t)):
            rr, cc = (r0 + dr).long(), (c0 + dc).long()
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            index = (rr.clamp(0, h - 1) * w + cc.clamp(0, w - 1)).reshape(b, 1, -1).expand(b, c, -1)
            values = flat.gather(2, index).reshape(out.shape)
            out = out + values * (wr * wc * inside)[:, None]
    return out


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                  dilation: int | tuple[int, int] = 1) -> torch.Tensor:
    """Deformable convolution v1 (see the module docstring).

    Args:
        x: ``B x C x H x W``.
        offset: ``B x 2 kh kw x H' x W'``: ``(dy_k, dx_k)`` for tap ``k = i * kw + j`` at channels ``2k, 2k + 1``.
        weight: ``O x C x kh x kw``; bias: ``O`` or ``None``.
        stride, padding, dilation: ints or pairs (rows, columns).

    Returns:
        ``B x O x H' x W'``, ``H' = (H + 2 p - d (kh - 1) - 1) // s + 1``.
    """
    s, p, d = check_deform(x, offset, weight, bias, stride, padding, dilation)
    o, c, kh, kw = weight.shape
    where = sampling_positions(offset, (kh, kw), s, p, d)                       # B x kh kw x H' x W' x 2
    samples = bilinear_zero(x, where[..., 0], where[..., 1])                    # B x C x kh kw x H' x W'
    out = torch.einsum("bckyx,ock->boyx", samples, weight.reshape(o, c, kh * kw))
    return out if bias is None else out + bias[None, :, None, None]


def sampling_positions(offset: torch.Tensor, kernel_size: tuple[int, int], stride: int | tuple[int, int] = 1,
                       padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1) -> torch.Tensor:
    """Where each tap reads: ``B x kh kw x H' x W' x 2`` input coordinates ``(row, column)``, ``offset``'s dtype."""
    kh, kw = int_pair("kernel_size", kernel_size, 1)
    (sy, sx), (py, px), (dy, dx) = int_pair("stride", stride, 1), int_pair("padding", padding, 0), \
        int_pair("dilation", dilation, 1)
    b, _, ho, wo = offset.shape
    if offset.shape[1] != 2 * kh * kw:
        raise ValueError(f"offset must have 2*kh*kw = {2 * kh * kw} channels, got shape {tuple(offset.shape)}")
    i, j = torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing="ij")
    y, x = torch.meshgrid(torch.arange(ho), torch.arange(wo), indexing="ij")
    rows = (y * sy - py)[None] + (i.reshape(-1) * dy)[:, None, None]               # taps x H' x W'
    cols = (x * sx - px)[None] + (j.reshape(-1) * dx)[:, None, None]
    grid = torch.stack([rows, cols], -1).to(offset.dtype).to(offset.device)
    return grid[None] + offset.reshape(b, kh * kw, 2, ho, wo).permute(0, 1, 3, 4, 2)
