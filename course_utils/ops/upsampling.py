"""Upsampling from scratch: the references of lab 03, each checked against torch in the unit tests.

All images are batches ``N x C x H x W`` of floats. The five ways to make a feature map bigger:

- :func:`nearest_upsample` — copy each value into an ``s x s`` block (``F.interpolate(mode="nearest")``);
- :func:`bed_of_nails` — the value at the top-left of its block, zeros elsewhere (no torch operator);
- :func:`max_unpool2d` — put each value back where max pooling found it (``F.max_unpool2d``);
- :func:`bilinear_upsample` — linear interpolation along rows, then columns
  (``F.interpolate(mode="bilinear")``, both ``align_corners`` conventions);
- :func:`conv_transpose2d` — every input value weights a copy of the filter, placed ``stride`` output
  pixels apart; overlapping copies are summed (``F.conv_transpose2d``).

:func:`conv_transpose_output_size` is the size rule ``(n - 1) * s - 2p + k + output_padding``;
:func:`bilinear_kernel` is the kernel that turns a transposed convolution into bilinear interpolation.
Bad arguments raise ``TypeError`` / ``ValueError`` saying what was expected.
"""

from __future__ import annotations

import torch

from course_utils import validation


# ---- argument checks -------------------------------------------------------------------------
def check_transposed(x: object, weight: object, bias: object, stride: int, padding: int,
                     output_padding: int) -> tuple[int, int]:
    """Validate the arguments of a 2-D transposed convolution; returns the output size ``(H', W')``."""
    x = validation.images("x", x)
    weight = validation.tensor("weight", weight, dtypes="float")
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (C_in x C_out x kH x kW), got shape {tuple(weight.shape)}")
    if weight.shape[0] != x.shape[1]:
        raise ValueError(f"mismatched channels: x has C_in={x.shape[1]} channels but weight has shape "
                         f"{tuple(weight.shape)}; a transposed convolution's weight is C_in x C_out x kH x kW")
    if weight.dtype != x.dtype:
        raise TypeError(f"x and weight must have the same dtype, got {x.dtype} and {weight.dtype}")
    if bias is not None:
        bias = validation.tensor("bias", bias, ndim=1, dtypes="float")
        if bias.shape[0] != weight.shape[1]:
            raise ValueError(f"bias must have C_out={weight.shape[1]} entries, got shape {tuple(bias.shape)}")
    validation.integer("stride", stride, 1)
    validation.integer("padding", padding, 0)
    validation.integer("output_padding", output_padding, 0)
    if output_padding >= stride:
        raise ValueError(f"output_padding must be smaller than stride ({stride}), got {output_padding}: "
                         f"it only picks one of the {stride} input sizes a stride-{stride} convolution maps "
                         f"to the same output size")
    (h, w), (kh, kw) = x.shape[2:], weight.shape[2:]
    return (conv_transpose_output_size(h, kh, stride, padding, output_padding),
            conv_transpose_output_size(w, kw, stride, padding, output_padding))


# ---- the size rule ---------------------------------------------------------------------------
def conv_transpose_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0) -> int:
    """Output length of a transposed convolution of a length-``n`` input: ``(n-1)s - 2p + k + op``.

    The copies of the filter start ``stride`` apart, so the full result has ``(n - 1) * s + k`` values;
    ``padding`` trims ``p`` from each end and ``output_padding`` adds ``op`` at the end.
    """
    validation.integer("n", n, 1)
    validation.integer("kernel_size", kernel_size, 1)
    validation.integer("stride", stride, 1)
    validation.integer("padding", padding, 0)
    validation.integer("output_padding", output_padding, 0)
    if output_padding >= stride:
        raise ValueError(f"output_padding must be smaller than stride ({stride}), got {output_padding}")
    size = (n - 1) * stride - 2 * padding + kernel_size + output_padding
    if size < 1:
        raise ValueError(f"padding {padding} trims everything: (n-1)*s - 2p + k + output_padding = {size} "
                         f"for n={n}, k={kernel_size}, s={stride}; use a smaller padding")
    return size


# ---- fixed upsampling ------------------------------------------------------------------------
def nearest_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``N x C x H x W`` -> ``N x C x sH x sW``, each value copied into an ``s x s`` block."""
    x = validation.images("x", x)
    validation.integer("scale", scale, 1)
    return x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)


def bed_of_nails(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``N x C x H x W`` -> ``N x C x sH x sW``: the value at the top-left of each block, zeros elsewhere."""
    x = validation.images("x", x)
    validation.integer("scale", scale, 1)
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * scale, w * scale)
    out[:, :, ::scale, ::scale] = x
    return out


def max_unpool2d(x: torch.Tensor, indices: torch.Tensor, kernel_size: int, stride: int | None = None,
                 output_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Undo ``F.max_pool2d(..., return_indices=True)``: values back at their positions, zeros elsewhere.

    Args:
        x: pooled values ``N x C x h x w``.
        indices: same shape, int64: the flat position ``row * W + col`` of each maximum in its
            ``H x W`` channel, as max pooling returns it.
        kernel_size, stride: of the pooling (stride defaults to kernel_size).
        output_size: ``(H, W)``; default ``((h-1)*stride + kernel_size, ...)``, which is smaller than the
            pooled image when pooling dropped a border row or column (odd sizes) — then pass it.
    """
    x = validation.images("x", x)
    indices = validation.tensor("indices", indices, dtypes="int")
    if indices.shape != x.shape:
        raise ValueError(f"indices must have the shape of x {tuple(x.shape)}, got {tuple(indices.shape)}")
    validation.integer("kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None else validation.integer("stride", stride, 1)
    if output_size is None:
        output_size = ((x.shape[2] - 1) * stride + kernel_size, (x.shape[3] - 1) * stride + kernel_size)
    height, width = validation.size_pair("output_size", output_size)
    if indices.numel() and (indices.min() < 0 or indices.max() >= height * width):
        raise ValueError(f"indices must be in [0, {height * width}) for an output of size {height} x {width}, "
                         f"got values in [{indices.min().item()}, {indices.max().item()}]")
    n, c = x.shape[:2]
    out = x.new_zeros(n, c, height * width)
    out.scatter_(2, indices.reshape(n, c, -1).long(), x.reshape(n, c, -1))
    return out.reshape(n, c, height, width)


def _source_coords(n_in: int, n_out: int, align_corners: bool, dtype: torch.dtype,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each output position: the two input neighbours (i0, i1) and the weight of i1."""
    dst = torch.arange(n_out, dtype=dtype, device=device)
    if align_corners:  # first and last pixel centres line up
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else torch.zeros_like(dst)
    else:              # pixel areas line up; centres at (i + 0.5) in both grids
        src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0, i1, src - i0.to(dtype)


def bilinear_upsample(x: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Bilinear interpolation of ``N x C x H x W`` to ``N x C x size[0] x size[1]``.

    ``align_corners=True`` maps the corner pixel centres onto each other (source ``= dst (in-1)/(out-1)``);
    ``False`` (torch's default) maps pixel areas (source ``= (dst + 0.5) in/out - 0.5``, clamped at 0).
    """
    x = validation.images("x", x)
    height, width = validation.size_pair("size", size)
    if not isinstance(align_corners, bool):
        raise TypeError(f"align_corners must be True or False, got {align_corners!r}")
    r0, r1, wr = _source_coords(x.shape[2], height, align_corners, x.dtype, x.device)
    c0, c1, wc = _source_coords(x.shape[3], width, align_corners, x.dtype, x.device)
    rows = x[:, :, r0] * (1 - wr)[:, None] + x[:, :, r1] * wr[:, None]  # N x C x height x W
    return rows[..., c0] * (1 - wc) + rows[..., c1] * wc


# ---- learnable upsampling --------------------------------------------------------------------
def conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
                     padding: int = 0, output_padding: int = 0) -> torch.Tensor:
    """2-D transposed convolution, as weighted copies of the filter summed where they overlap.

    Args:
        x: ``N x C_in x H x W``.
        weight: ``C_in x C_out x kH x kW`` (the layout of ``nn.ConvTranspose2d.weight``).
        bias: ``C_out`` or None.
    Returns:
        ``N x C_out x H' x W'`` with ``H' = (H-1)*stride - 2*padding + kH + output_padding``.
    """
    out_h, out_w = check_transposed(x, weight, bias, stride, padding, output_padding)
    n, _, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    # The untrimmed result: copy (i, j) of the filter starts at output pixel (i*s, j*s).
    full = x.new_zeros(n, c_out, max((h - 1) * stride + kh, padding + out_h),
                       max((w - 1) * stride + kw, padding + out_w))
    for di in range(kh):
        for dj in range(kw):
            # kernel tap (di, dj) of every copy lands on a strided grid of the output
            contribution = torch.einsum("nchw,cd->ndhw", x, weight[:, :, di, dj])
            full[:, :, di:di + (h - 1) * stride + 1:stride, dj:dj + (w - 1) * stride + 1:stride] += contribution
    out = full[:, :, padding:padding + out_h, padding:padding + out_w]
    if bias is not None:
        out = out + bias[:, None, None]
    return out


def bilinear_kernel(scale: int) -> torch.Tensor:
    """The ``k x k`` kernel (``k = 2s - s % 2``) that makes a stride-``s`` transposed convolution interpolate.

    With ``padding = (k - s + 1) // 2`` it reproduces ``F.interpolate(mode="bilinear", align_corners=False)``
    away from the border. FCN (Long et al. 2015) initialises its upsampling layers with it.
    """
    validation.integer("scale", scale, 1)
    size = 2 * scale - scale % 2
    centre = scale - 1 if size % 2 == 1 else scale - 0.5
    profile = 1 - (torch.arange(size, dtype=torch.float64) - centre).abs() / scale
    return (profile[:, None] * profile[None, :]).float()
