"""Convolution as a matrix: the references of lab 04, checked against torch in the unit tests.

A convolution is linear in its input, so it is a matrix ``X``: ``conv(x) = X @ x``. Its transpose is
the transposed convolution: ``conv_transpose(a) = X.T @ a`` — the same numbers, read column-wise.

- :func:`conv1d_matrix` acts on the *padded* vector, as in the lecture: kernel ``[x, y, z]``, stride 1,
  padding 1 on ``[a, b, c, d]`` is a 4 x 6 matrix times ``[0, a, b, c, d, 0]``.
- :func:`conv2d_matrix` acts on the flattened *unpadded* input ``C_in x H x W`` (the columns that would
  multiply the zero padding are dropped): ``F.conv2d(x, w).flatten() == X @ x.flatten()`` and
  ``F.conv_transpose2d(a, w, output_padding=op).flatten() == X.T @ a.flatten()``.

Convolution here is what deep learning calls convolution: cross-correlation, ``y[i] = sum_j w[j] x[i*s + j]``.
"""

from __future__ import annotations

import torch

from course_utils import validation


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution: ``floor((n + 2p - k) / s) + 1``; the kernel must fit the padded input."""
    validation.integer("n", n, 1)
    validation.integer("kernel_size", kernel_size, 1)
    validation.integer("stride", stride, 1)
    validation.integer("padding", padding, 0)
    if kernel_size > n + 2 * padding:
        raise ValueError(f"the kernel ({kernel_size}) is larger than the padded input "
                         f"(n + 2p = {n} + 2*{padding} = {n + 2 * padding}); use more padding or a smaller kernel")
    return (n + 2 * padding - kernel_size) // stride + 1


def transpose_output_padding(n: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """The ``output_padding`` that makes ``conv_transpose`` return length ``n`` again: ``(n + 2p - k) mod s``.

    A stride-``s`` convolution maps ``s`` different input lengths to the same output length (the
    remainder is dropped); ``output_padding`` says which one the transposed convolution should produce.
    """
    conv_output_size(n, kernel_size, stride, padding)  # validates
    return (n + 2 * padding - kernel_size) % stride


def conv1d_matrix(weight: torch.Tensor, n: int, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """The ``n_out x (n + 2p)`` matrix of a 1-D convolution, acting on the zero-padded input.

    Row ``i`` holds the kernel starting at column ``i * stride``: ``X[i, i*s + j] = weight[j]``.

    Args:
        weight: the kernel, shape ``(k,)``, floating point.
        n: input length (before padding).
    """
    validation.tensor("weight", weight, ndim=1, dtypes="float")
    k = weight.shape[0]
    n_out = conv_output_size(n, k, stride, padding)
    matrix = weight.new_zeros(n_out, n + 2 * padding)
    rows = torch.arange(n_out, device=weight.device)[:, None]
    cols = rows * stride + torch.arange(k, device=weight.device)[None, :]
    matrix[rows.expand(-1, k), cols] = weight.expand(n_out, k)
    return matrix


def conv2d_matrix(weight: torch.Tensor, in_size: tuple[int, int], stride: int = 1, padding: int = 0) -> torch.Tensor:
    """The unrolled matrix of a 2-D convolution ``C_in x H x W -> C_out x H' x W'``.

    Args:
        weight: ``C_out x C_in x kH x kW`` (the layout of ``nn.Conv2d.weight``).
        in_size: ``(H, W)`` of the input, before padding.
    Returns:
        ``(C_out * H' * W') x (C_in * H * W)``: rows in the order of ``y.flatten()`` for ``y`` of shape
        ``C_out x H' x W'``, columns in the order of ``x.flatten()``. Padding positions are dropped (they hold 0).
    """
    validation.tensor("weight", weight, ndim=4, dtypes="float")
    height, width = validation.size_pair("in_size", in_size)
    c_out, c_in, kh, kw = weight.shape
    out_h = conv_output_size(height, kh, stride, padding)
    out_w = conv_output_size(width, kw, stride, padding)
    full = weight.new_zeros(c_out, out_h, out_w, c_in, height + 2 * padding, width + 2 * padding)
    r = torch.arange(out_h, device=weight.device)[:, None]
    c = torch.arange(out_w, device=weight.device)[None, :]
    for di in range(kh):
        for dj in range(kw):
            # output pixel (r, c) sees padded input pixel (r*s + di, c*s + dj) through tap (di, dj);
            # advanced indices go first in the result: shape out_h x out_w x C_out x C_in
            full[:, r, c, :, r * stride + di, c * stride + dj] = weight[:, :, di, dj]
    full = full[..., padding:padding + height, padding:padding + width]
    return full.reshape(c_out * out_h * out_w, c_in * height * width)
