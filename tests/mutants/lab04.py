"""Lab 04 (transposed convolution as a matrix): wrong implementations a student plausibly writes, and
shortcuts that call the library function the exercise asks them to write themselves."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _student import student_module

from course_utils.ops import conv_matrix
from mutants import Collection

cm = student_module(conv_matrix)  # the course functions, as a student would copy them

MUTANTS = Collection()
CHEATS = Collection()


# ---- 04.conv1d_matrix ------------------------------------------------------------------------
def _matrix1d(weight, n, stride, padding, *, n_out=None, flip=False, buffer=None):
    k = weight.shape[0]
    if n_out is None:
        n_out = (n + 2 * padding - k) // stride + 1
    if flip:
        weight = weight.flip(0)
    matrix = weight.new_zeros(n_out, n + 2 * padding) if buffer is None else buffer(n_out, n + 2 * padding)
    for i in range(n_out):
        row = weight[: max(0, min(k, n + 2 * padding - i * stride))]
        matrix[i, i * stride:i * stride + len(row)] = row
    return matrix


@MUTANTS.add("04.conv1d_matrix", "one padding column short (n + p columns)")
def matrix1d_one_pad_short(weight, n, stride=1, padding=0):
    return _matrix1d(weight, n, stride, padding)[:, :n + padding]


@MUTANTS.add("04.conv1d_matrix", "ignores the stride (row i starts at column i)")
def matrix1d_ignores_stride(weight, n, stride=1, padding=0):
    return _matrix1d(weight, n, 1, padding)


@MUTANTS.add("04.conv1d_matrix", "rounds the number of rows up (ceil) instead of down")
def matrix1d_ceil_rows(weight, n, stride=1, padding=0):
    k = weight.shape[0]
    return _matrix1d(weight, n, stride, padding, n_out=-(-(n + 2 * padding - k) // stride) + 1)


@MUTANTS.add("04.conv1d_matrix", "flips the kernel (a true convolution, not deep learning's cross-correlation)")
def matrix1d_flipped(weight, n, stride=1, padding=0):
    return _matrix1d(weight, n, stride, padding, flip=True)


@MUTANTS.add("04.conv1d_matrix", "rows from the unpadded length: (n - k) // s + 1")
def matrix1d_rows_ignore_padding(weight, n, stride=1, padding=0):
    k = weight.shape[0]
    return _matrix1d(weight, n, stride, padding, n_out=max(1, (n - k) // stride + 1))


@MUTANTS.add("04.conv1d_matrix", "torch.zeros(...) buffer: float32 whatever the kernel's dtype")
def matrix1d_float32(weight, n, stride=1, padding=0):
    return _matrix1d(weight, n, stride, padding, buffer=lambda *shape: torch.zeros(*shape))


@MUTANTS.add("04.conv1d_matrix", "padding defaults to 1 ('same' for a 3-tap kernel)")
def matrix1d_default_padding_1(weight, n, stride=1, padding=1):
    return _matrix1d(weight, n, stride, padding)


# ---- 04.conv_transpose1d ---------------------------------------------------------------------
def _size(m, k, stride, padding, output_padding):
    return (m - 1) * stride - 2 * padding + k + output_padding


@MUTANTS.add("04.conv_transpose1d", "returns X.T @ a uncropped (padded coordinates)")
def transpose1d_no_crop(a, weight, stride=1, padding=0, output_padding=0):
    n = _size(a.shape[0], weight.shape[0], stride, padding, output_padding)
    return cm.conv1d_matrix(weight, n, stride, padding).T @ a


@MUTANTS.add("04.conv_transpose1d", "crops the padding at the start only")
def transpose1d_crops_start(a, weight, stride=1, padding=0, output_padding=0):
    n = _size(a.shape[0], weight.shape[0], stride, padding, output_padding)
    return (cm.conv1d_matrix(weight, n, stride, padding).T @ a)[padding:]


@MUTANTS.add("04.conv_transpose1d", "n without output_padding")
def transpose1d_no_output_padding(a, weight, stride=1, padding=0, output_padding=0):
    n = _size(a.shape[0], weight.shape[0], stride, padding, 0)
    return (cm.conv1d_matrix(weight, n, stride, padding).T @ a)[padding:padding + n]


@MUTANTS.add("04.conv_transpose1d", "matrix of the flipped kernel")
def transpose1d_flipped(a, weight, stride=1, padding=0, output_padding=0):
    n = _size(a.shape[0], weight.shape[0], stride, padding, output_padding)
    return (cm.conv1d_matrix(weight.flip(0), n, stride, padding).T @ a)[padding:padding + n]


@MUTANTS.add("04.conv_transpose1d", "padding defaults to 1")
def transpose1d_default_padding_1(a, weight, stride=1, padding=1, output_padding=0):
    n = _size(a.shape[0], weight.shape[0], stride, padding, output_padding)
    return (cm.conv1d_matrix(weight, n, stride, padding).T @ a)[padding:padding + n]


@MUTANTS.add("04.conv_transpose1d", "X built in a torch.zeros(...) buffer: float32 whatever a's dtype")
def transpose1d_float32(a, weight, stride=1, padding=0, output_padding=0):
    n = _size(a.shape[0], weight.shape[0], stride, padding, output_padding)
    matrix = _matrix1d(weight, n, stride, padding, buffer=lambda *shape: torch.zeros(*shape))
    return (matrix.T @ a.float())[padding:padding + n]


# ---- 04.conv2d_matrix ------------------------------------------------------------------------
def _matrix2d(weight, in_size, stride, padding, *, square=False, wrap=False, col_stride=None, buffer=None):
    c_out, c_in, kh, kw = weight.shape
    if square:
        kw = kh
    height, width = in_size
    out_h = (height + 2 * padding - kh) // stride + 1
    out_w = (width + 2 * padding - kw) // stride + 1
    col_stride = stride if col_stride is None else col_stride
    shape = (c_out, out_h, out_w, c_in, height, width)
    matrix = weight.new_zeros(shape) if buffer is None else buffer(*shape)
    for r in range(out_h):
        for c in range(out_w):
            for di in range(kh):
                for dj in range(kw):
                    row, col = r * stride + di - padding, c * col_stride + dj - padding
                    inside = 0 <= row < height and 0 <= col < width
                    if inside or (wrap and -height <= row < height and -width <= col < width):
                        matrix[:, r, c, :, row, col] = weight[:, :, di, dj]
    return matrix.reshape(c_out * out_h * out_w, c_in * height * width)


@MUTANTS.add("04.conv2d_matrix", "keeps the columns of the padding (matrix of the padded input)")
def matrix2d_keeps_padding(weight, in_size, stride=1, padding=0):
    return _matrix2d(weight, (in_size[0] + 2 * padding, in_size[1] + 2 * padding), stride, 0)


@MUTANTS.add("04.conv2d_matrix", "columns ordered (y, x, channel) instead of (channel, y, x)")
def matrix2d_channels_last_columns(weight, in_size, stride=1, padding=0):
    m = _matrix2d(weight, in_size, stride, padding)
    return m.reshape(m.shape[0], weight.shape[1], *in_size).permute(0, 2, 3, 1).reshape(m.shape)


@MUTANTS.add("04.conv2d_matrix", "rows ordered (r, c, channel) instead of (channel, r, c)")
def matrix2d_channels_last_rows(weight, in_size, stride=1, padding=0):
    m = _matrix2d(weight, in_size, stride, padding)
    c_out = weight.shape[0]
    return m.reshape(c_out, -1, m.shape[1]).transpose(0, 1).reshape(m.shape)


@MUTANTS.add("04.conv2d_matrix", "kW taken equal to kH: square kernels only")
def matrix2d_square_kernel(weight, in_size, stride=1, padding=0):
    return _matrix2d(weight, in_size, stride, padding, square=True)


@MUTANTS.add("04.conv2d_matrix", "no bounds check: padding positions wrap around (negative indices)")
def matrix2d_wraps(weight, in_size, stride=1, padding=0):
    return _matrix2d(weight, in_size, stride, padding, wrap=True)


@MUTANTS.add("04.conv2d_matrix", "the stride applied to the rows only")
def matrix2d_row_stride_only(weight, in_size, stride=1, padding=0):
    return _matrix2d(weight, in_size, stride, padding, col_stride=1)


@MUTANTS.add("04.conv2d_matrix", "torch.zeros(...) buffer: float32 whatever the weight's dtype")
def matrix2d_float32(weight, in_size, stride=1, padding=0):
    return _matrix2d(weight, in_size, stride, padding, buffer=lambda *shape: torch.zeros(*shape))


# ---- 04.vjp ----------------------------------------------------------------------------------
def _vjp(a, weight, in_size, stride, padding, *, channels=None, dtype=None, ones=False, conv_padding=None):
    c = weight.shape[1] if channels is None else channels
    x = torch.zeros(a.shape[0], c, *in_size, dtype=a.dtype if dtype is None else dtype, requires_grad=True)
    y = F.conv2d(x, weight, stride=stride, padding=padding if conv_padding is None else conv_padding)
    return torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y) if ones else a)[0]


@MUTANTS.add("04.vjp", "x of the transposed convolution's size (H'-1)s - 2p + k: ignores in_size (no output_padding)")
def vjp_ignores_in_size(a, weight, in_size, stride=1, padding=0):
    k_h, k_w = weight.shape[2:]
    size = [(n - 1) * stride - 2 * padding + k for n, k in zip(a.shape[2:], (k_h, k_w))]
    return _vjp(a, weight, size, stride, padding)


@MUTANTS.add("04.vjp", "x with C_out channels (weight.shape[0]) instead of C_in")
def vjp_out_channels(a, weight, in_size, stride=1, padding=0):
    return _vjp(a, weight, in_size, stride, padding, channels=weight.shape[0])


@MUTANTS.add("04.vjp", "the gradient of y.sum(): forgets grad_outputs=a")
def vjp_of_the_sum(a, weight, in_size, stride=1, padding=0):
    return _vjp(a, weight, in_size, stride, padding, ones=True)


@MUTANTS.add("04.vjp", "in_size read as (W, H)")
def vjp_size_swapped(a, weight, in_size, stride=1, padding=0):
    return _vjp(a, weight, (in_size[1], in_size[0]), stride, padding)


@MUTANTS.add("04.vjp", "x = torch.zeros(...) without dtype: float32 whatever a's dtype")
def vjp_float32(a, weight, in_size, stride=1, padding=0):
    return _vjp(a.float(), weight.float(), in_size, stride, padding)


@MUTANTS.add("04.vjp", "padding defaults to 1")
def vjp_default_padding_1(a, weight, in_size, stride=1, padding=1):
    return _vjp(a, weight, in_size, stride, padding)


# ---- 04.zero_insertion -----------------------------------------------------------------------
def _zero_insertion(x, weight, stride, padding, output_padding, *, flip=True, transpose=True, pad=None,
                    op_at_start=False, trailing=False, buffer=None):
    n, c, h, w = x.shape
    k = weight.shape[2]
    shape = (n, c, h * stride if trailing else (h - 1) * stride + 1, w * stride if trailing else (w - 1) * stride + 1)
    spread = x.new_zeros(shape) if buffer is None else buffer(*shape)
    spread[:, :, ::stride, ::stride] = x
    q = k - 1 - padding if pad is None else pad
    op = output_padding
    spread = F.pad(spread, (q + op, q, q + op, q) if op_at_start else (q, q + op, q, q + op))
    if flip:
        weight = weight.flip(2, 3)
    if transpose:
        weight = weight.transpose(0, 1)
    return F.conv2d(spread, weight)


@MUTANTS.add("04.zero_insertion", "forgets to flip the kernel")
def zeros_not_flipped(x, weight, stride=1, padding=0, output_padding=0):
    return _zero_insertion(x, weight, stride, padding, output_padding, flip=False)


@MUTANTS.add("04.zero_insertion", "forgets to swap C_in and C_out (no .transpose(0, 1))")
def zeros_not_transposed(x, weight, stride=1, padding=0, output_padding=0):
    return _zero_insertion(x, weight, stride, padding, output_padding, transpose=False)


@MUTANTS.add("04.zero_insertion", "pads p instead of k - 1 - p")
def zeros_pads_p(x, weight, stride=1, padding=0, output_padding=0):
    return _zero_insertion(x, weight, stride, padding, output_padding, pad=padding)


@MUTANTS.add("04.zero_insertion", "output_padding added at the top and left instead of the bottom and right")
def zeros_output_padding_first(x, weight, stride=1, padding=0, output_padding=0):
    return _zero_insertion(x, weight, stride, padding, output_padding, op_at_start=True)


@MUTANTS.add("04.zero_insertion", "a grid of H*s (s - 1 zeros after the last value too)")
def zeros_trailing(x, weight, stride=1, padding=0, output_padding=0):
    return _zero_insertion(x, weight, stride, padding, output_padding, trailing=True)


@MUTANTS.add("04.zero_insertion", "flips only the rows of the kernel (flip(2))")
def zeros_flips_rows_only(x, weight, stride=1, padding=0, output_padding=0):
    return _zero_insertion(x, weight.flip(3), stride, padding, output_padding)


@MUTANTS.add("04.zero_insertion", "stride defaults to 2 (the lecture's layer)")
def zeros_default_stride_2(x, weight, stride=2, padding=0, output_padding=0):
    return _zero_insertion(x, weight, stride, padding, output_padding)


@MUTANTS.add("04.zero_insertion", "the grid of zeros is a torch.zeros(...) buffer: float32 whatever x's dtype")
def zeros_float32_buffer(x, weight, stride=1, padding=0, output_padding=0):
    return _zero_insertion(x.float(), weight.float(), stride, padding, output_padding,
                           buffer=lambda *shape: torch.zeros(*shape))


# ---- shortcuts: the library function the exercise asks the student to write -------------------
@CHEATS.add("04.conv1d_matrix", "the Jacobian of F.conv1d")
def matrix1d_with_jacobian(weight, n, stride=1, padding=0):
    return torch.autograd.functional.jacobian(
        lambda v: F.conv1d(v[None, None], weight[None, None], stride=stride)[0, 0], torch.zeros(n + 2 * padding))


@CHEATS.add("04.conv1d_matrix", "impulse responses of F.conv1d")
def matrix1d_with_conv1d(weight, n, stride=1, padding=0):
    eye = torch.eye(n + 2 * padding, dtype=weight.dtype)
    return F.conv1d(eye[:, None], weight[None, None], stride=stride)[:, 0].T


@CHEATS.add("04.conv_transpose1d", "F.conv_transpose1d")
def transpose1d_with_torch(a, weight, stride=1, padding=0, output_padding=0):
    return F.conv_transpose1d(a[None, None], weight[None, None], None, stride, padding, output_padding)[0, 0]


@CHEATS.add("04.conv2d_matrix", "impulse responses of F.conv2d")
def matrix2d_with_conv2d(weight, in_size, stride=1, padding=0):
    c_in = weight.shape[1]
    size = c_in * in_size[0] * in_size[1]
    impulses = torch.eye(size, dtype=weight.dtype).reshape(size, c_in, *in_size)
    return F.conv2d(impulses, weight, stride=stride, padding=padding).flatten(1).T


@CHEATS.add("04.vjp", "F.conv_transpose2d")
def vjp_with_conv_transpose(a, weight, in_size, stride=1, padding=0):
    op = [(n + 2 * padding - k) % stride for n, k in zip(in_size, weight.shape[2:])]
    return F.conv_transpose2d(a, weight, None, stride, padding, op)


@CHEATS.add("04.vjp", "torch.nn.grad.conv2d_input")
def vjp_with_nn_grad(a, weight, in_size, stride=1, padding=0):
    return torch.nn.grad.conv2d_input((a.shape[0], weight.shape[1], *in_size), weight, a, stride, padding)


@CHEATS.add("04.zero_insertion", "F.conv_transpose2d")
def zeros_with_conv_transpose(x, weight, stride=1, padding=0, output_padding=0):
    return F.conv_transpose2d(x, weight, None, stride, padding, output_padding)


# ---- shortcuts through the compiled kernels (torch.ops.aten) and the course's own code --------------
@CHEATS.add("04.conv1d_matrix", "impulse responses of the compiled op torch.ops.aten.conv1d")
def matrix1d_with_aten(weight, n, stride=1, padding=0):
    eye = torch.eye(n + 2 * padding, dtype=weight.dtype)
    return torch.ops.aten.conv1d(eye[:, None], weight[None, None], None, [stride])[:, 0].T


@CHEATS.add("04.conv_transpose1d", "the compiled op torch.ops.aten.conv_transpose1d.default")
def transpose1d_with_aten(a, weight, stride=1, padding=0, output_padding=0):
    return torch.ops.aten.conv_transpose1d.default(a[None, None], weight[None, None], None, [stride], [padding],
                                                   [output_padding])[0, 0]


@CHEATS.add("04.conv_transpose1d", "the course's conv_transpose2d on a one-row image")
def transpose1d_with_course(a, weight, stride=1, padding=0, output_padding=0):
    from course_utils.ops.upsampling import conv_transpose2d

    kernel = torch.zeros(1, 1, 1 + 2 * padding, len(weight), dtype=weight.dtype)   # the padding trims rows too
    kernel[0, 0, padding] = weight
    return conv_transpose2d(a[None, None, None], kernel, None, stride, padding, output_padding)[0, 0, 0]


@CHEATS.add("04.vjp", "the compiled op torch.ops.aten.convolution_backward")
def vjp_with_aten(a, weight, in_size, stride=1, padding=0):
    x = torch.zeros(a.shape[0], weight.shape[1], *in_size, dtype=a.dtype)
    return torch.ops.aten.convolution_backward(a, x, weight, None, [stride] * 2, [padding] * 2, [1, 1], False,
                                               [0, 0], 1, [True, False, False])[0]
