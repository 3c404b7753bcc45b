"""Lab 03 (upsampling): correct implementations written another way than the course's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mutants import Collection

from course_utils.ops import upsampling as _upsampling

PROBES = Collection()


# ---- 03.nearest ------------------------------------------------------------------------------
@PROBES.add("03.nearest", "repeat_interleave along the rows, then along the columns")
def nearest_repeat_interleave(x, scale):
    return x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)


@PROBES.add("03.nearest", "a Kronecker product with an s x s block of ones")
def nearest_kron(x, scale):
    return torch.kron(x, torch.ones(1, 1, scale, scale, dtype=x.dtype))


# ---- 03.bed_of_nails -------------------------------------------------------------------------
@PROBES.add("03.bed_of_nails", "x stacked with zeros in a N x C x H x s x W x s block, reshaped")
def nails_blocks(x, scale):
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h, scale, w, scale)
    out[:, :, :, 0, :, 0] = x
    return out.reshape(n, c, h * scale, w * scale)


@PROBES.add("03.bed_of_nails", "index_put_ at the rows and columns i * s, j * s")
def nails_index_put(x, scale):
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h * scale, w * scale, dtype=x.dtype)
    rows = (torch.arange(h) * scale)[:, None].expand(h, w)
    cols = (torch.arange(w) * scale)[None, :].expand(h, w)
    out[:, :, rows, cols] = x
    return out


# ---- 03.max_unpool ---------------------------------------------------------------------------
def _unpool_size(x, kernel_size, stride, output_size):
    stride = kernel_size if stride is None else stride
    return tuple(output_size) if output_size is not None else tuple((n - 1) * stride + kernel_size for n in x.shape[2:])


@PROBES.add("03.max_unpool", "index_put_ on the flattened output with the flat indices plus a per-channel offset")
def unpool_flat_offsets(x, indices, kernel_size, stride=None, output_size=None):
    n, c = x.shape[:2]
    h, w = _unpool_size(x, kernel_size, stride, output_size)
    offsets = (torch.arange(n * c) * (h * w))[:, None]
    flat = torch.zeros(n * c * h * w, dtype=x.dtype)
    flat = flat.index_put(((indices.reshape(n * c, -1) + offsets).reshape(-1),), x.reshape(-1))
    return flat.reshape(n, c, h, w)


@PROBES.add("03.max_unpool", "a loop over the values: row = i // W, column = i % W")
def unpool_loop(x, indices, kernel_size, stride=None, output_size=None):
    n, c = x.shape[:2]
    h, w = _unpool_size(x, kernel_size, stride, output_size)
    out = x.new_zeros(n, c, h, w)
    for b in range(n):
        for ch in range(c):
            for value, i in zip(x[b, ch].reshape(-1).tolist(), indices[b, ch].reshape(-1).tolist()):
                out[b, ch, i // w, i % w] = value
    return out


# ---- 03.bilinear -----------------------------------------------------------------------------
def _weights_matrix(n_in, n_out, align_corners, dtype):
    """``n_out x n_in``: row d holds the two interpolation weights of output position d."""
    d = torch.arange(n_out, dtype=torch.float64)
    if align_corners:
        u = d * (n_in - 1) / (n_out - 1) if n_out > 1 else torch.zeros_like(d)
    else:
        u = ((d + 0.5) * n_in / n_out - 0.5).clamp(min=0)
    i0 = u.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    t = u - i0
    a = torch.zeros(n_out, n_in, dtype=torch.float64)
    a[torch.arange(n_out), i0] += 1 - t
    a[torch.arange(n_out), i1] += t
    return a.to(dtype)


@PROBES.add("03.bilinear", "separable: A_rows @ x @ A_cols.T with interpolation matrices built in float64")
def bilinear_matrices(x, size, align_corners=False):
    rows = _weights_matrix(x.shape[2], size[0], align_corners, x.dtype)
    cols = _weights_matrix(x.shape[3], size[1], align_corners, x.dtype)
    return rows @ x @ cols.T


@PROBES.add("03.bilinear", "the four neighbours weighted at once, in float64, cast back")
def bilinear_four_neighbours(x, size, align_corners=False):
    def coords(n_in, n_out):
        d = torch.arange(n_out, dtype=torch.float64)
        if align_corners:
            u = d * ((n_in - 1) / (n_out - 1)) if n_out > 1 else torch.zeros_like(d)
        else:
            u = ((d + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
        i0 = u.floor().long().clamp(max=n_in - 1)
        return i0, (i0 + 1).clamp(max=n_in - 1), u - i0

    r0, r1, ty = coords(x.shape[2], size[0])
    c0, c1, tx = coords(x.shape[3], size[1])
    v = x.double()
    ty, tx = ty[:, None], tx[None, :]
    out = ((1 - ty) * (1 - tx) * v[:, :, r0][:, :, :, c0] + (1 - ty) * tx * v[:, :, r0][:, :, :, c1]
           + ty * (1 - tx) * v[:, :, r1][:, :, :, c0] + ty * tx * v[:, :, r1][:, :, :, c1])
    return out.to(x.dtype)


# ---- 03.output_size --------------------------------------------------------------------------
@PROBES.add("03.output_size", "the end of the last copy, (n - 1) * s + k, then the trims and the extra")
def output_size_last_copy(n, kernel_size, stride=1, padding=0, output_padding=0):
    last_start = (n - 1) * stride
    return last_start + kernel_size - padding - padding + output_padding


@PROBES.add("03.output_size", "counted: the positions the copies cover, trimmed")
def output_size_counted(n, kernel_size, stride=1, padding=0, output_padding=0):
    covered = max(i * stride + j for i in range(n) for j in range(kernel_size)) + 1
    return covered - 2 * padding + output_padding


# ---- 03.conv_transpose2d ---------------------------------------------------------------------
def _trim(full, bias, padding, out_h, out_w):
    out = full[:, :, padding:padding + out_h, padding:padding + out_w]
    return out if bias is None else out + bias[:, None, None]


@PROBES.add("03.conv_transpose2d", "F.fold of the filter copies (col2im), then trimmed")
def transposed_fold(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    n, _c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    full = ((h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding)
    copies = torch.einsum("nchw,cdkl->ndklhw", x, weight).reshape(n, c_out * kh * kw, h * w)
    out = F.fold(copies, (full[0] - output_padding, full[1] - output_padding), (kh, kw), stride=stride)
    out = F.pad(out, (0, output_padding, 0, output_padding))
    return _trim(out, bias, padding, full[0] - 2 * padding, full[1] - 2 * padding)


@PROBES.add("03.conv_transpose2d", "with the course's conv_transpose_output_size (as after fallback), a loop "
                                   "over the kernel taps instead of the input pixels")
def transposed_over_taps(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    n, _c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    out_h = _upsampling.conv_transpose_output_size(h, kh, stride, padding, output_padding)
    out_w = _upsampling.conv_transpose_output_size(w, kw, stride, padding, output_padding)
    full = x.new_zeros(n, c_out, (h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding)
    for a in range(kh):
        for b in range(kw):
            tap = torch.einsum("nchw,cd->ndhw", x, weight[:, :, a, b])
            full[:, :, a:a + (h - 1) * stride + 1:stride, b:b + (w - 1) * stride + 1:stride] += tap
    return _trim(full, bias, padding, out_h, out_w)


@PROBES.add("03.conv_transpose2d", "zero insertion and F.conv2d with the flipped, transposed kernel (lab 04's way)")
def transposed_zero_insertion(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    n, c, h, w = x.shape
    kh, kw = weight.shape[2:]
    spread = x.new_zeros(n, c, (h - 1) * stride + 1, (w - 1) * stride + 1)
    spread[:, :, ::stride, ::stride] = x
    qh, qw = kh - 1 - padding, kw - 1 - padding
    spread = F.pad(spread, (qw, qw + output_padding, qh, qh + output_padding)) if min(qh, qw) >= 0 else spread
    return F.conv2d(spread, weight.flip(2, 3).transpose(0, 1), bias)
