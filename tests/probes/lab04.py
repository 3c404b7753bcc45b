"""Lab 04 (transposed convolution as a matrix): correct implementations written another way than the course's."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from mutants import Collection

from course_utils.ops import conv_matrix as _conv_matrix

PROBES = Collection()


# ---- 04.conv1d_matrix ------------------------------------------------------------------------
@PROBES.add("04.conv1d_matrix", "index arithmetic: rows i, columns i * s + j, one index_put_")
def matrix1d_indices(weight, n, stride=1, padding=0):
    k = weight.shape[0]
    rows = (n + 2 * padding - k) // stride + 1
    i = torch.arange(rows)[:, None].expand(rows, k)
    j = i * stride + torch.arange(k)[None, :]
    out = torch.zeros(rows, n + 2 * padding, dtype=weight.dtype)
    out[i, j] = weight.expand(rows, k)
    return out


@PROBES.add("04.conv1d_matrix", "numpy, column by column: entry (i, c) is w[c - i * s] when it exists")
def matrix1d_numpy(weight, n, stride=1, padding=0):
    w = weight.numpy()
    k, cols = len(w), n + 2 * padding
    rows = (cols - k) // stride + 1
    out = np.zeros((rows, cols), dtype=w.dtype)
    for c in range(cols):
        for i in range(rows):
            if 0 <= c - i * stride < k:
                out[i, c] = w[c - i * stride]
    return torch.from_numpy(out)


# ---- 04.conv_transpose1d ---------------------------------------------------------------------
@PROBES.add("04.conv_transpose1d", "X.T @ a with the course's conv1d_matrix (as after fallback)")
def transpose1d_course_matrix(a, weight, stride=1, padding=0, output_padding=0):
    n = (a.shape[0] - 1) * stride - 2 * padding + weight.shape[0] + output_padding
    return (_conv_matrix.conv1d_matrix(weight, n, stride, padding).T @ a)[padding:padding + n]


@PROBES.add("04.conv_transpose1d", "the copies a_i * w added at i * s (the matrix never built), float64 inside")
def transpose1d_copies(a, weight, stride=1, padding=0, output_padding=0):
    k = weight.shape[0]
    n = (a.shape[0] - 1) * stride - 2 * padding + k + output_padding
    full = torch.zeros((a.shape[0] - 1) * stride + k + output_padding + padding, dtype=torch.float64)
    for i, value in enumerate(a.double()):
        full[i * stride:i * stride + k] += value * weight.double()
    return full[padding:padding + n].to(a.dtype)


# ---- 04.conv2d_matrix ------------------------------------------------------------------------
@PROBES.add("04.conv2d_matrix", "F.unfold of the basis images (im2col), times the flattened kernels")
def matrix2d_unfold(weight, in_size, stride=1, padding=0):
    c_out, c_in, kh, kw = weight.shape
    h, w = in_size
    basis = torch.eye(c_in * h * w, dtype=weight.dtype).reshape(-1, c_in, h, w)
    cols = F.unfold(basis, (kh, kw), padding=padding, stride=stride)           # (C_in H W) x (C_in kh kw) x L
    out = weight.reshape(c_out, -1) @ cols                                      # (C_in H W) x C_out x L
    return out.permute(1, 2, 0).reshape(-1, c_in * h * w)


@PROBES.add("04.conv2d_matrix", "a loop over the kernel taps, vectorised over the output pixels")
def matrix2d_taps(weight, in_size, stride=1, padding=0):
    c_out, c_in, kh, kw = weight.shape
    h, w = in_size
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = torch.zeros(c_out, oh, ow, c_in, h, w, dtype=weight.dtype)
    r, c = torch.meshgrid(torch.arange(oh), torch.arange(ow), indexing="ij")
    for di in range(kh):
        for dj in range(kw):
            y, x = r * stride + di - padding, c * stride + dj - padding
            inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            rr, cc, yy, xx = r[inside], c[inside], y[inside], x[inside]
            out[:, rr, cc, :, yy, xx] = weight[:, :, di, dj][None].expand(len(rr), c_out, c_in)
    return out.reshape(c_out * oh * ow, c_in * h * w)


# ---- 04.vjp ----------------------------------------------------------------------------------
@PROBES.add("04.vjp", "torch.func.vjp of the convolution")
def vjp_func(a, weight, in_size, stride=1, padding=0):
    x = torch.zeros(a.shape[0], weight.shape[1], *in_size, dtype=a.dtype)
    _, pullback = torch.func.vjp(lambda v: F.conv2d(v, weight, stride=stride, padding=padding), x)
    return pullback(a)[0]


@PROBES.add("04.vjp", "backward() from (a * y).sum() at a random x (the convolution is linear)")
def vjp_backward(a, weight, in_size, stride=1, padding=0):
    x = torch.randn(a.shape[0], weight.shape[1], *in_size, dtype=a.dtype, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    (a * F.conv2d(x, weight, stride=stride, padding=padding)).sum().backward()
    return x.grad


# ---- 04.zero_insertion -----------------------------------------------------------------------
@PROBES.add("04.zero_insertion", "the zeros by a Kronecker product with a one-hot s x s block, cropped")
def zeros_kron(x, weight, stride=1, padding=0, output_padding=0):
    _n, _c, h, w = x.shape
    k = weight.shape[2]
    block = torch.zeros(stride, stride, dtype=x.dtype)
    block[0, 0] = 1
    spread = torch.kron(x, block)[:, :, :(h - 1) * stride + 1, :(w - 1) * stride + 1]
    q = k - 1 - padding
    spread = F.pad(spread, (q, q + output_padding, q, q + output_padding))
    return F.conv2d(spread, weight.transpose(0, 1).flip(-1).flip(-2))


@PROBES.add("04.zero_insertion", "float64 inside: the grid filled by index_put_, padded by slicing into zeros")
def zeros_float64(x, weight, stride=1, padding=0, output_padding=0):
    n, c, h, w = x.shape
    k = weight.shape[2]
    q = k - 1 - padding
    size_h, size_w = (h - 1) * stride + 1 + 2 * q + output_padding, (w - 1) * stride + 1 + 2 * q + output_padding
    grid = torch.zeros(n, c, size_h, size_w, dtype=torch.float64)
    rows, cols = torch.arange(h) * stride + q, torch.arange(w) * stride + q
    grid[:, :, rows[:, None], cols[None, :]] = x.double()
    return F.conv2d(grid, weight.double().flip(2, 3).transpose(0, 1)).to(x.dtype)
