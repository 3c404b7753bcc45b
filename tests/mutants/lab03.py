"""Lab 03 (upsampling): wrong implementations a student plausibly writes, and shortcuts that call the
library function the exercise asks them to write themselves."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _student import student_module

from course_utils.ops import upsampling
from mutants import Collection

up = student_module(upsampling)  # the course functions, as a student would copy them

MUTANTS = Collection()
CHEATS = Collection()


# ---- 03.nearest ------------------------------------------------------------------------------
@MUTANTS.add("03.nearest", "copies each value down the rows only (forgets the columns)")
def nearest_rows_only(x, scale):
    return x.repeat_interleave(scale, dim=2)


@MUTANTS.add("03.nearest", "tiles the whole image (x.repeat) instead of copying each value into a block")
def nearest_tiles(x, scale):
    return x.repeat(1, 1, scale, scale)


@MUTANTS.add("03.nearest", "row index built from the width, column index from the height (square images only)")
def nearest_swapped_sides(x, scale):
    rows = torch.arange(x.shape[3] * scale) // scale
    cols = torch.arange(x.shape[2] * scale) // scale
    return x[:, :, rows][:, :, :, cols]


@MUTANTS.add("03.nearest", "works on x[0] and adds the batch back: assumes a batch of one image")
def nearest_first_image(x, scale):
    image = x[0].repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return image[None]


@MUTANTS.add("03.nearest", "fills a torch.zeros(...) buffer: float32 whatever x's dtype")
def nearest_float32_buffer(x, scale):
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h * scale, w * scale)
    for di in range(scale):
        for dj in range(scale):
            out[:, :, di::scale, dj::scale] = x
    return out


@MUTANTS.add("03.nearest", "returns x itself when scale is 1 (not a new tensor)")
def nearest_alias_at_scale_1(x, scale):
    if scale == 1:
        return x
    return x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)


@MUTANTS.add("03.nearest", "rounds i / s to the nearest input pixel instead of flooring")
def nearest_rounds(x, scale):
    rows = torch.round(torch.arange(x.shape[2] * scale) / scale).long().clamp(max=x.shape[2] - 1)
    cols = torch.round(torch.arange(x.shape[3] * scale) / scale).long().clamp(max=x.shape[3] - 1)
    return x[:, :, rows][:, :, :, cols]


# ---- 03.bed_of_nails -------------------------------------------------------------------------
@MUTANTS.add("03.bed_of_nails", "puts the value at the bottom-right of its block")
def nails_bottom_right(x, scale):
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * scale, w * scale)
    out[:, :, scale - 1::scale, scale - 1::scale] = x
    return out


@MUTANTS.add("03.bed_of_nails", "torch.zeros(...) buffer: float32 whatever x's dtype")
def nails_float32_buffer(x, scale):
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h * scale, w * scale)
    out[:, :, ::scale, ::scale] = x
    return out


@MUTANTS.add("03.bed_of_nails", "output of H*s x H*s: assumes square images")
def nails_square(x, scale):
    n, c, h, _ = x.shape
    out = x.new_zeros(n, c, h * scale, h * scale)
    out[:, :, ::scale, ::scale] = x[..., :h]
    return out


@MUTANTS.add("03.bed_of_nails", "returns x itself when scale is 1 (not a new tensor)")
def nails_alias_at_scale_1(x, scale):
    if scale == 1:
        return x
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * scale, w * scale)
    out[:, :, ::scale, ::scale] = x
    return out


@MUTANTS.add("03.bed_of_nails", "zeros between the rows only, not between the columns")
def nails_rows_only(x, scale):
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * scale, w)
    out[:, :, ::scale] = x
    return out


@MUTANTS.add("03.bed_of_nails", "buffer of one image: new_zeros(1, C, ...) (assumes a batch of one)")
def nails_one_image(x, scale):
    _, c, h, w = x.shape
    out = x.new_zeros(1, c, h * scale, w * scale)
    out[:, :, ::scale, ::scale] = x[:1]
    return out


# ---- 03.max_unpool ---------------------------------------------------------------------------
def _unpool(x, indices, height, width):
    n, c = x.shape[:2]
    flat = x.new_zeros(n, c, height * width)
    flat = flat.scatter(2, indices.reshape(n, c, -1), x.reshape(n, c, -1))
    return flat.reshape(n, c, height, width)


@MUTANTS.add("03.max_unpool", "stride defaults to 1 instead of kernel_size")
def unpool_default_stride_1(x, indices, kernel_size, stride=None, output_size=None):
    stride = stride or 1
    if output_size is None:
        output_size = [(n - 1) * stride + kernel_size for n in x.shape[2:]]
    return _unpool(x, indices, *output_size)


@MUTANTS.add("03.max_unpool", "default size h * kernel_size (ignores the stride)")
def unpool_default_times_kernel(x, indices, kernel_size, stride=None, output_size=None):
    if output_size is None:
        output_size = [n * kernel_size for n in x.shape[2:]]
    return _unpool(x, indices, *output_size)


@MUTANTS.add("03.max_unpool", "default size h * stride (forgets the last window's kernel_size - stride)")
def unpool_default_times_stride(x, indices, kernel_size, stride=None, output_size=None):
    stride = kernel_size if stride is None else stride
    if output_size is None:
        output_size = [n * stride for n in x.shape[2:]]
    return _unpool(x, indices, *output_size)


@MUTANTS.add("03.max_unpool", "ignores output_size (always the default size)")
def unpool_ignores_output_size(x, indices, kernel_size, stride=None, output_size=None):
    stride = kernel_size if stride is None else stride
    height, width = [(n - 1) * stride + kernel_size for n in x.shape[2:]]
    size = height * width
    keep = indices < size          # maxima outside the default size are dropped
    return _unpool(x * keep, indices * keep, height, width)


@MUTANTS.add("03.max_unpool", "decodes the flat index with the height (row = i // H): square images only")
def unpool_decodes_with_height(x, indices, kernel_size, stride=None, output_size=None):
    stride = kernel_size if stride is None else stride
    if output_size is None:
        output_size = [(n - 1) * stride + kernel_size for n in x.shape[2:]]
    height, width = output_size
    out = x.new_zeros(*x.shape[:2], height, width)
    rows, cols = (indices // height).clamp(max=height - 1), indices % height
    b = torch.arange(x.shape[0])[:, None, None, None].expand_as(x)
    c = torch.arange(x.shape[1])[None, :, None, None].expand_as(x)
    out[b, c, rows, cols] = x
    return out


@MUTANTS.add("03.max_unpool", "scatters into one flat N*C*H*W vector without a per-channel offset")
def unpool_no_channel_offset(x, indices, kernel_size, stride=None, output_size=None):
    stride = kernel_size if stride is None else stride
    if output_size is None:
        output_size = [(n - 1) * stride + kernel_size for n in x.shape[2:]]
    height, width = output_size
    n, c = x.shape[:2]
    flat = x.new_zeros(n * c * height * width)
    flat = flat.scatter(0, indices.flatten(), x.flatten())
    return flat.reshape(n, c, height, width)


@MUTANTS.add("03.max_unpool", "torch.zeros(...) buffer: float32 whatever x's dtype")
def unpool_float32_buffer(x, indices, kernel_size, stride=None, output_size=None):
    stride = kernel_size if stride is None else stride
    if output_size is None:
        output_size = [(n - 1) * stride + kernel_size for n in x.shape[2:]]
    n, c = x.shape[:2]
    height, width = output_size
    flat = torch.zeros(n, c, height * width)
    flat = flat.scatter(2, indices.reshape(n, c, -1), x.reshape(n, c, -1).float())
    return flat.reshape(n, c, height, width)


# ---- 03.bilinear -----------------------------------------------------------------------------
def _bilinear(x, size, align_corners, *, centre_when_one=False, shift=True, clamp=True, swap_weights=False):
    def neighbours(n_in, n_out):
        d = torch.arange(n_out, dtype=x.dtype)
        if align_corners:
            if n_out > 1:
                u = d * ((n_in - 1) / (n_out - 1))
            else:
                u = torch.full_like(d, (n_in - 1) / 2) if centre_when_one else torch.zeros_like(d)
        else:
            u = (d + 0.5) * (n_in / n_out) - 0.5 if shift else d * (n_in / n_out)
            if clamp:
                u = u.clamp(min=0)
        i0 = u.floor().long().clamp(0, n_in - 1)
        i1 = (i0 + 1).clamp(max=n_in - 1)
        return i0, i1, u - u.floor()

    r0, r1, wr = neighbours(x.shape[2], size[0])
    c0, c1, wc = neighbours(x.shape[3], size[1])
    if swap_weights:
        wr, wc = 1 - wr, 1 - wc
    rows = x[:, :, r0] * (1 - wr)[:, None] + x[:, :, r1] * wr[:, None]
    return rows[..., c0] * (1 - wc) + rows[..., c1] * wc


@MUTANTS.add("03.bilinear", "ignores align_corners: always the half-pixel (False) convention")
def bilinear_ignores_align_corners(x, size, align_corners=False):
    return _bilinear(x, size, False)


@MUTANTS.add("03.bilinear", "align_corners defaults to True (the notebook relies on False)")
def bilinear_default_true(x, size, align_corners=True):
    return _bilinear(x, size, align_corners)


@MUTANTS.add("03.bilinear", "align_corners=False without the half-pixel shift: u = d * n_in / n_out")
def bilinear_no_half_pixel(x, size, align_corners=False):
    return _bilinear(x, size, align_corners, shift=False)


@MUTANTS.add("03.bilinear", "align_corners=False without clamping u at 0")
def bilinear_unclamped(x, size, align_corners=False):
    return _bilinear(x, size, align_corners, clamp=False)


@MUTANTS.add("03.bilinear", "align_corners=True, output side 1: samples the centre instead of pixel 0")
def bilinear_centre_when_one(x, size, align_corners=False):
    return _bilinear(x, size, align_corners, centre_when_one=True)


@MUTANTS.add("03.bilinear", "size read as (width, height)")
def bilinear_size_swapped(x, size, align_corners=False):
    return _bilinear(x, (size[1], size[0]), align_corners)


@MUTANTS.add("03.bilinear", "weights swapped: 1 - t on the far neighbour")
def bilinear_swapped_weights(x, size, align_corners=False):
    return _bilinear(x, size, align_corners, swap_weights=True)


@MUTANTS.add("03.bilinear", "writes into a torch.zeros(...) buffer: float32 whatever x's dtype")
def bilinear_float32_buffer(x, size, align_corners=False):
    out = torch.zeros(*x.shape[:2], *size)
    out[:] = _bilinear(x, size, align_corners)
    return out


@MUTANTS.add("03.bilinear", "returns x itself when the size does not change")
def bilinear_alias_same_size(x, size, align_corners=False):
    if tuple(size) == tuple(x.shape[2:]):
        return x
    return _bilinear(x, size, align_corners)


# ---- 03.output_size --------------------------------------------------------------------------
@MUTANTS.add("03.output_size", "n * s instead of (n - 1) * s")
def size_n_times_s(n, kernel_size, stride=1, padding=0, output_padding=0):
    return n * stride - 2 * padding + kernel_size + output_padding


@MUTANTS.add("03.output_size", "padding adds (+2p) as in a convolution")
def size_plus_padding(n, kernel_size, stride=1, padding=0, output_padding=0):
    return (n - 1) * stride + 2 * padding + kernel_size + output_padding


@MUTANTS.add("03.output_size", "trims the padding at one end only (-p)")
def size_minus_one_padding(n, kernel_size, stride=1, padding=0, output_padding=0):
    return (n - 1) * stride - padding + kernel_size + output_padding


@MUTANTS.add("03.output_size", "forgets output_padding")
def size_no_output_padding(n, kernel_size, stride=1, padding=0, output_padding=0):
    return (n - 1) * stride - 2 * padding + kernel_size


@MUTANTS.add("03.output_size", "stride defaults to 2 (the lecture's layer)")
def size_default_stride_2(n, kernel_size, stride=2, padding=0, output_padding=0):
    return (n - 1) * stride - 2 * padding + kernel_size + output_padding


@MUTANTS.add("03.output_size", "returns a float (a size must be an int)")
def size_float(n, kernel_size, stride=1, padding=0, output_padding=0):
    return float((n - 1) * stride - 2 * padding + kernel_size + output_padding)


# ---- 03.conv_transpose2d ---------------------------------------------------------------------
def _transposed(x, weight, bias, stride, padding, output_padding, *, flip=False, trim_start_only=False,
                use_output_padding=True, use_bias=True, swap_layout=False, square_kernel=False, zero_fill=False):
    n, _, h, w = x.shape
    if swap_layout:
        weight = weight.transpose(0, 1)
    c_out, kh, kw = weight.shape[1:]
    if square_kernel:
        kw = kh
        weight = weight[..., :kh]
    if flip:
        weight = weight.flip(2, 3)
    op = output_padding if use_output_padding and not zero_fill else 0
    out_h, out_w = (h - 1) * stride - 2 * padding + kh + op, (w - 1) * stride - 2 * padding + kw + op
    full = x.new_zeros(n, c_out, (h - 1) * stride + kh + op, (w - 1) * stride + kw + op)
    for i in range(h):
        for j in range(w):
            copy = torch.einsum("nc,cdkl->ndkl", x[:, :, i, j], weight)
            full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += copy
    if trim_start_only:
        out = full[:, :, padding:, padding:]
    else:
        out = full[:, :, padding:padding + out_h, padding:padding + out_w]
    if zero_fill:
        out = F.pad(out, (0, output_padding, 0, output_padding))
    if bias is not None and use_bias:
        out = out + bias[:, None, None]
    return out


@MUTANTS.add("03.conv_transpose2d", "trims the padding at the start only")
def transposed_trims_start_only(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _transposed(x, weight, bias, stride, padding, output_padding, trim_start_only=True)


@MUTANTS.add("03.conv_transpose2d", "forgets output_padding")
def transposed_no_output_padding(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _transposed(x, weight, bias, stride, padding, output_padding, use_output_padding=False)


@MUTANTS.add("03.conv_transpose2d", "output_padding as zeros appended after trimming (not the copies' values)")
def transposed_output_padding_as_zeros(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _transposed(x, weight, bias, stride, padding, output_padding, zero_fill=True)


@MUTANTS.add("03.conv_transpose2d", "forgets the bias")
def transposed_no_bias(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _transposed(x, weight, bias, stride, padding, output_padding, use_bias=False)


@MUTANTS.add("03.conv_transpose2d", "places copies of the flipped filter (mixes up with convolution)")
def transposed_flipped(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _transposed(x, weight, bias, stride, padding, output_padding, flip=True)


@MUTANTS.add("03.conv_transpose2d", "reads the weight as C_out x C_in x kH x kW (nn.Conv2d's layout)")
def transposed_conv_layout(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _transposed(x, weight, bias, stride, padding, output_padding, swap_layout=True)


@MUTANTS.add("03.conv_transpose2d", "kW taken equal to kH: square kernels only")
def transposed_square_kernel(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _transposed(x, weight, bias, stride, padding, output_padding, square_kernel=True)


@MUTANTS.add("03.conv_transpose2d", "builds the result under torch.no_grad(): the layer cannot learn")
def transposed_no_grad(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    with torch.no_grad():
        return _transposed(x, weight, bias, stride, padding, output_padding)


# ---- shortcuts: the library function the exercise asks the student to write -------------------
@CHEATS.add("03.nearest", "F.interpolate(mode='nearest')")
def nearest_with_interpolate(x, scale):
    return F.interpolate(x, scale_factor=scale, mode="nearest")


@CHEATS.add("03.nearest", "nn.Upsample (calls F.interpolate)")
def nearest_with_upsample_layer(x, scale):
    return torch.nn.Upsample(scale_factor=scale)(x)


@CHEATS.add("03.bed_of_nails", "F.conv_transpose2d with a one-hot kernel (the lab's own remark)")
def nails_with_conv_transpose(x, scale):
    c = x.shape[1]
    nail = x.new_zeros(c, c, scale, scale)
    nail[torch.arange(c), torch.arange(c), 0, 0] = 1
    return F.conv_transpose2d(x, nail, stride=scale)


@CHEATS.add("03.max_unpool", "nn.MaxUnpool2d (calls F.max_unpool2d)")
def unpool_with_layer(x, indices, kernel_size, stride=None, output_size=None):
    return torch.nn.MaxUnpool2d(kernel_size, stride)(x, indices, output_size=output_size)


@CHEATS.add("03.max_unpool", "F.max_unpool2d")
def unpool_with_torch(x, indices, kernel_size, stride=None, output_size=None):
    return F.max_unpool2d(x, indices, kernel_size, stride, output_size=output_size)


@CHEATS.add("03.bilinear", "F.interpolate(mode='bilinear')")
def bilinear_with_interpolate(x, size, align_corners=False):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


@CHEATS.add("03.bilinear", "F.upsample_bilinear (deprecated alias)")
def bilinear_with_upsample_bilinear(x, size, align_corners=False):
    return F.upsample_bilinear(x, size=size)


@CHEATS.add("03.bilinear", "the aten kernel torch._C._nn.upsample_bilinear2d")
def bilinear_with_aten(x, size, align_corners=False):
    return torch._C._nn.upsample_bilinear2d(x, list(size), align_corners)


@CHEATS.add("03.conv_transpose2d", "F.conv_transpose2d")
def transposed_with_torch(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)


@CHEATS.add("03.conv_transpose2d", "torch.convolution(..., transposed=True, ...)")
def transposed_with_convolution(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return torch.convolution(x, weight, bias, [stride] * 2, [padding] * 2, [1, 1], True, [output_padding] * 2, 1)


# ---- shortcuts through the compiled kernels (torch.ops.aten) and the course's own code --------------
@CHEATS.add("03.nearest", "the compiled op torch.ops.aten.upsample_nearest2d.vec")
def nearest_aten(x, scale):
    return torch.ops.aten.upsample_nearest2d.vec(x, None, [float(scale), float(scale)])


@CHEATS.add("03.bed_of_nails", "the compiled op torch.ops.aten.convolution, transposed, with a one-hot kernel")
def nails_aten(x, scale):
    c = x.shape[1]
    kernel = torch.zeros(c, 1, scale, scale, dtype=x.dtype)
    kernel[:, :, 0, 0] = 1
    return torch.ops.aten.convolution(x, kernel, None, [scale, scale], [0, 0], [1, 1], True, [0, 0], c)


@CHEATS.add("03.max_unpool", "the compiled op torch.ops.aten.max_unpool2d")
def unpool_aten(x, indices, kernel_size, stride=None, output_size=None):
    stride = kernel_size if stride is None else stride
    size = output_size or [(n - 1) * stride + kernel_size for n in x.shape[2:]]
    return torch.ops.aten.max_unpool2d(x, indices, list(size))


@CHEATS.add("03.bilinear", "the compiled op torch.ops.aten.upsample_bilinear2d.vec")
def bilinear_aten(x, size, align_corners=False):
    return torch.ops.aten.upsample_bilinear2d.vec(x, list(size), align_corners, None)


@CHEATS.add("03.bilinear", "the course's private upsampling._source_coords")
def bilinear_course_private(x, size, align_corners=False):
    r0, r1, wr = upsampling._source_coords(x.shape[2], size[0], align_corners, x.dtype, x.device)
    c0, c1, wc = upsampling._source_coords(x.shape[3], size[1], align_corners, x.dtype, x.device)
    rows = x[:, :, r0] * (1 - wr)[:, None] + x[:, :, r1] * wr[:, None]
    return rows[..., c0] * (1 - wc) + rows[..., c1] * wc


@CHEATS.add("03.conv_transpose2d",
            "the compiled op torch.ops.aten.convolution_backward (a convolution's input gradient)")
def transpose_aten_backward(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    size = [(n - 1) * stride - 2 * padding + k + output_padding for n, k in zip(x.shape[2:], weight.shape[2:])]
    grad, _, _ = torch.ops.aten.convolution_backward(
        x, torch.zeros(x.shape[0], weight.shape[1], *size, dtype=x.dtype), weight, None, [stride] * 2, [padding] * 2,
        [1, 1], False, [0, 0], 1, [True, False, False])
    return grad if bias is None else grad + bias[:, None, None]
