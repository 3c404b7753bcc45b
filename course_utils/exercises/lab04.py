"""Lab 04 exercises: convolution and transposed convolution as matrices.

Every reference is written the way the lab asks the student to (tests/test_lab04.py checks each against
``F.conv1d`` / ``F.conv2d`` / ``F.conv_transpose1d`` / ``F.conv_transpose2d``): the matrices in
:mod:`course_utils.ops.conv_matrix`, the transposed convolution as ``X.T @ a``, the vector-Jacobian product
with autograd, and zero insertion with ``F.conv2d``. The library functions that would do the student's work
(the transposed convolutions, the convolution itself inside the matrix builders, the Jacobian) are off-limits
inside the student's function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import validation
from course_utils.exercises.cases import rand_int
from course_utils.exercises.lab03 import TRANSPOSED
from course_utils.grading.exercise import ACCUMULATED, EXACT, Case, Exercise
from course_utils.ops import conv_matrix
from course_utils.ops.upsampling import check_transposed, conv_transpose_output_size

LECTURE_KERNEL = torch.tensor([1.0, 2.0, 3.0])  # [x, y, z] with x=1, y=2, z=3: entries show which tap



# ---- 04.conv1d_matrix ------------------------------------------------------------------------
def _conv1d_matrix_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((LECTURE_KERNEL.clone(), 4, 1, 1), note="the lecture: kernel [x, y, z], n=4, stride 1, padding 1 (4 x 6)"),
        Case((LECTURE_KERNEL.clone(), 4, 2, 1), note="the lecture: stride 2 (2 x 6)"),
        Case((torch.randn(3, generator=g), 5, 1, 0), note="no padding"),
        Case((torch.randn(1, generator=g), 4, 1, 0), note="kernel 1: a diagonal matrix"),
        Case((torch.randn(6, generator=g), 4, 1, 1), note="kernel = padded input: a single row"),
        Case((torch.randn(2, generator=g), 8, 3, 0), note="stride 3 > kernel 2: columns no row touches"),
        Case((torch.randn(4, generator=g), 7, 2, 2), note="stride 2, padding 2, the remainder dropped"),
        Case((torch.randn(3, generator=g), 5), note="stride and padding not given (defaults 1, 0): 3 x 5"),
        Case((torch.randn(3, generator=g), 6, 2), note="padding not given: stride 2, 2 x 6"),
        Case((torch.randn(3, generator=g, dtype=torch.float64), 6, 2, 1),
             note="a float64 kernel, stride 2, padding 1: the matrix keeps the kernel's dtype"),
    ]
    for _ in range(3):
        k, s = rand_int(g, 1, 5), rand_int(g, 1, 3)
        p = rand_int(g, 0, k - 1)
        n = rand_int(g, max(1, k - 2 * p), 12)
        cases.append(Case((torch.randn(k, generator=g), n, s, p), note=f"random: k={k}, n={n}, s={s}, p={p}"))
    return cases


CONV1D_MATRIX = Exercise(
    "04.conv1d_matrix", title="the matrix of a 1-D convolution (on the padded input)",
    reference=conv_matrix.conv1d_matrix,
    cases=_conv1d_matrix_cases, tolerance=EXACT,
    hint="n_out = (n + 2p - k) // s + 1 rows and n + 2p columns; row i holds the kernel from column i * s: "
         "X[i, i*s : i*s + k] = weight.",
    function="conv1d_matrix",
    off_limits=("torch.nn.functional.conv1d", "torch.conv1d", "torch.autograd.functional.jacobian") + TRANSPOSED,
    yourself="build the matrix yourself (the kernel in each row)",
)


# ---- 04.conv_transpose1d ---------------------------------------------------------------------
def conv_transpose1d_reference(a: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0,
                               output_padding: int = 0) -> torch.Tensor:
    """``F.conv_transpose1d`` on 1-D vectors (no batch, no channels) as ``X.T @ a``, after argument checks."""
    validation.tensor("a", a, ndim=1, dtypes="float")
    validation.tensor("weight", weight, ndim=1, dtypes="float")
    if a.dtype != weight.dtype:
        raise TypeError(f"a and weight must have the same dtype, got {a.dtype} and {weight.dtype}")
    if a.shape[0] == 0:
        raise ValueError("a is empty; expected at least one value")
    n = conv_transpose_output_size(a.shape[0], weight.shape[0], stride, padding, output_padding)  # validates
    matrix = conv_matrix.conv1d_matrix(weight, n, stride, padding)     # m x (n + 2p)
    return (matrix.T @ a)[padding:padding + n]


def _conv_transpose1d_cases(g: torch.Generator) -> list[Case]:
    abcd = torch.tensor([1.0, 10.0, 100.0, 1000.0])
    cases = [
        Case((abcd.clone(), LECTURE_KERNEL.clone(), 1, 1), note="the lecture: [a, b, c, d], stride 1, padding 1"),
        Case((abcd[:2].clone(), LECTURE_KERNEL.clone(), 2, 1, 1),
             note="the lecture: [a, b], stride 2, padding 1, output_padding 1"),
        Case((torch.randn(5, generator=g), torch.randn(3, generator=g), 1, 0), note="stride 1, no padding"),
        Case((torch.randn(4, generator=g), torch.randn(2, generator=g), 3, 0, 2), note="stride 3 > kernel 2"),
        Case((torch.randn(1, generator=g), torch.randn(4, generator=g), 2, 1), note="a single value"),
        Case((torch.randn(4, generator=g), torch.randn(3, generator=g)),
             note="stride, padding, output_padding not given (defaults 1, 0, 0)"),
        Case((torch.randn(3, generator=g), torch.randn(3, generator=g), 2), note="only the stride given: 2"),
        Case((torch.randn(3, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64),
              2, 1, 1),
             note="float64, kernel 4, stride 2, padding 1, output_padding 1: the result keeps a's dtype"),
    ]
    for _ in range(3):
        k, s = rand_int(g, 1, 5), rand_int(g, 1, 3)
        p, op, m = rand_int(g, 0, (k - 1) // 2), rand_int(g, 0, s - 1), rand_int(g, 1, 8)
        cases.append(Case((torch.randn(m, generator=g), torch.randn(k, generator=g), s, p, op),
                          note=f"random: m={m}, k={k}, s={s}, p={p}, output_padding={op}"))
    return cases


CONV_TRANSPOSE1D = Exercise(
    "04.conv_transpose1d", title="transposed convolution as X.T @ a", reference=conv_transpose1d_reference,
    cases=_conv_transpose1d_cases,
    tolerance=ACCUMULATED,
    hint="the result has n = (m-1)*s - 2p + k + output_padding values; X = conv1d_matrix(weight, n, s, p) maps "
         "length n to length m; X.T @ a has n + 2p values (padded coordinates): drop p at each end.",
    function="conv_transpose1d_matmul",
    off_limits=TRANSPOSED, yourself="compute it as X.T @ a with your conv1d_matrix",
    allowed=("course_utils.ops.conv_matrix.conv1d_matrix",),  # the student's, which may be the course's after fallback
)


# ---- 04.conv2d_matrix ------------------------------------------------------------------------
def _conv2d_matrix_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.arange(1.0, 10.0).reshape(1, 1, 3, 3), (4, 4)), note="3 x 3 kernel on 4 x 4: a 4 x 16 matrix"),
        Case((torch.randn(1, 1, 3, 3, generator=g), (4, 4), 2, 1), note="stride 2, padding 1"),
        Case((torch.randn(3, 2, 2, 2, generator=g), (5, 4), 1, 0), note="2 -> 3 channels, non-square input"),
        Case((torch.randn(1, 2, 2, 2, generator=g), (7, 7), 3, 0), note="stride 3 > kernel 2"),
        Case((torch.randn(2, 1, 3, 3, generator=g), (1, 1), 1, 1), note="a single pixel, padding 1"),
        Case((torch.randn(2, 2, 2, 3, generator=g), (5, 6), 2, 1),
             note="a non-square 2 x 3 kernel, 2 -> 2 channels, 5 x 6, stride 2, padding 1"),
        Case((torch.randn(1, 2, 3, 3, generator=g), (5, 5), 2), note="padding not given: stride 2"),
        Case((torch.randn(2, 1, 3, 2, generator=g, dtype=torch.float64), (4, 3), 1, 1),
             note="a float64 3 x 2 kernel, 4 x 3, padding 1: the matrix keeps the kernel's dtype"),
    ]
    for _ in range(3):
        c_out, c_in, k, s = rand_int(g, 1, 3), rand_int(g, 1, 3), rand_int(g, 1, 4), rand_int(g, 1, 3)
        p = rand_int(g, 0, k // 2)
        size = (rand_int(g, max(1, k - 2 * p), 7), rand_int(g, max(1, k - 2 * p), 7))
        cases.append(Case((torch.randn(c_out, c_in, k, k, generator=g), size, s, p),
                          note=f"random: {c_in} -> {c_out} channels, {size[0]} x {size[1]}, k={k}, s={s}, p={p}"))
    return cases


CONV2D_MATRIX = Exercise(
    "04.conv2d_matrix", title="the unrolled matrix of a 2-D convolution", reference=conv_matrix.conv2d_matrix,
    cases=_conv2d_matrix_cases, tolerance=EXACT,
    hint="row (o, r, c) = o*H'*W' + r*W' + c; column (i, y, x) = i*H*W + y*W + x. Output pixel (r, c) of channel o "
         "sees input (i, r*s + di - p, c*s + dj - p) with weight[o, i, di, dj]: skip positions outside the image "
         "(they are padding zeros).",
    function="conv2d_matrix",
    off_limits=("torch.nn.functional.conv2d", "torch.conv2d", "torch.autograd.functional.jacobian") + TRANSPOSED,
    yourself="build the matrix yourself (loops over output pixels and kernel taps are fine)",
)


# ---- 04.vjp ----------------------------------------------------------------------------------
def conv2d_vjp_reference(a: torch.Tensor, weight: torch.Tensor, in_size: tuple[int, int], stride: int = 1,
                         padding: int = 0) -> torch.Tensor:
    """The gradient of ``(a * F.conv2d(x, weight, stride, padding)).sum()`` w.r.t. ``x`` (a transposed
    convolution), asked of autograd as the lab does."""
    validation.tensor("a", a, ndim=4, dtypes="float")
    validation.tensor("weight", weight, ndim=4, dtypes="float")
    height, width = validation.size_pair("in_size", in_size)
    validation.integer("stride", stride, 1)
    validation.integer("padding", padding, 0)
    k_h, k_w = weight.shape[2:]
    expected = (a.shape[0], weight.shape[0],
                conv_matrix.conv_output_size(height, k_h, stride, padding),
                conv_matrix.conv_output_size(width, k_w, stride, padding))
    if tuple(a.shape) != expected:
        raise ValueError(f"a must have the shape of the convolution's output {expected} (N x C_out x H' x W'), "
                         f"got {tuple(a.shape)}")
    if a.dtype != weight.dtype:
        raise TypeError(f"a and weight must have the same dtype, got {a.dtype} and {weight.dtype}")
    with torch.enable_grad():
        x = torch.zeros(a.shape[0], weight.shape[1], height, width, dtype=a.dtype, device=a.device, requires_grad=True)
        y = F.conv2d(x, weight.detach(), stride=stride, padding=padding)
        return torch.autograd.grad(y, x, grad_outputs=a.detach())[0]


def _vjp_cases(g: torch.Generator) -> list[Case]:
    specs = [  # (N, C_in, C_out, H, W, k, s, p, note)
        (1, 1, 1, 4, 4, 3, 1, 1, "stride 1, padding 1"),
        (1, 1, 1, 4, 4, 3, 2, 1, "stride 2, padding 1: the lecture's sizes"),
        (2, 3, 2, 5, 6, 3, 2, 0, "batch, channels; odd size: a column no window reaches"),
        (1, 2, 1, 7, 7, 2, 3, 0, "stride 3 > kernel 2"),
    ]
    for _ in range(2):
        k, s = rand_int(g, 1, 4), rand_int(g, 1, 3)
        p = rand_int(g, 0, k // 2)
        specs.append((rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 1, 3), rand_int(g, max(1, k - 2 * p), 8),
                      rand_int(g, max(1, k - 2 * p), 8), k, s, p, f"random: k={k}, s={s}, p={p}"))
    cases = []
    for n, c_in, c_out, h, w, k, s, p, note in specs:
        out = (conv_matrix.conv_output_size(h, k, s, p), conv_matrix.conv_output_size(w, k, s, p))
        cases.append(Case((torch.randn(n, c_out, *out, generator=g), torch.randn(c_out, c_in, k, k, generator=g),
                           (h, w), s, p), note=note))
    cases.insert(4, Case((torch.randn(2, 2, 4, 3, generator=g), torch.randn(2, 3, 3, 3, generator=g), (6, 5)),
                         note="stride and padding not given (defaults 1, 0): 6 x 5, batch 2, 3 -> 2 channels"))
    cases.insert(5, Case((torch.randn(1, 2, 3, 2, generator=g, dtype=torch.float64),
                          torch.randn(2, 1, 3, 3, generator=g, dtype=torch.float64), (6, 4), 2, 1),
                         note="float64, non-square 6 x 4, stride 2, padding 1: the result keeps a's dtype"))
    return cases


VJP = Exercise(
    "04.vjp", title="the vector-Jacobian product of a convolution, with autograd", reference=conv2d_vjp_reference,
    cases=_vjp_cases,
    tolerance=ACCUMULATED,
    hint="x = torch.zeros(N, C_in, H, W, requires_grad=True) (any x: the convolution is linear); "
         "y = F.conv2d(x, weight, stride=stride, padding=padding); torch.autograd.grad(y, x, grad_outputs=a)[0].",
    function="conv2d_vjp",
    off_limits=TRANSPOSED, yourself="ask autograd for it (torch.autograd.grad)",
)


# ---- 04.zero_insertion -----------------------------------------------------------------------
def zero_insertion_reference(x: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0,
                             output_padding: int = 0) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, None, stride, padding, output_padding)`` computed as the lab asks:
    zeros inserted between the values, padding ``k - 1 - p`` (negative: cropping), a stride-1 ``F.conv2d``
    with the flipped kernel, ``C_in`` and ``C_out`` swapped."""
    check_transposed(x, weight, None, stride, padding, output_padding)
    n, c, h, w = x.shape
    k_h, k_w = weight.shape[2:]
    spread = x.new_zeros(n, c, (h - 1) * stride + 1, (w - 1) * stride + 1)
    spread[:, :, ::stride, ::stride] = x
    q_h, q_w = k_h - 1 - padding, k_w - 1 - padding
    spread = F.pad(spread, (q_w, q_w + output_padding, q_h, q_h + output_padding))
    return F.conv2d(spread, weight.flip(2, 3).transpose(0, 1))


def _zero_insertion_cases(g: torch.Generator) -> list[Case]:
    specs = [  # (N, C_in, C_out, H, W, k, s, p, op, note)
        (1, 1, 1, 2, 2, 3, 2, 1, 1, "the lecture: 2 x 2 -> 4 x 4, stride 2, padding 1, output_padding 1"),
        (1, 1, 1, 3, 3, 3, 1, 0, 0, "stride 1: no zeros inserted, padding k - 1"),
        (1, 1, 1, 4, 3, 3, 1, 1, 0, "stride 1, padding 1: an ordinary 'same' convolution"),
        (1, 2, 3, 3, 4, 4, 2, 1, 0, "kernel 4, stride 2, padding 1; 2 -> 3 channels"),
        (2, 1, 2, 3, 3, 2, 3, 0, 2, "stride 3 > kernel 2, output_padding 2"),
        (1, 1, 1, 3, 3, 3, 2, 2, 0, "padding = k - 1: nothing added around"),
    ]
    for _ in range(3):
        k, s = rand_int(g, 1, 5), rand_int(g, 1, 3)
        p, op = rand_int(g, 0, (k - 1) // 2), rand_int(g, 0, s - 1)
        specs.append((rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 1, 3), rand_int(g, 1, 6),
                      rand_int(g, 1, 6), k, s, p, op, f"random: k={k}, s={s}, p={p}, output_padding={op}"))
    cases = []
    for n, c_in, c_out, h, w, k, s, p, op, note in specs:
        cases.append(Case((torch.randn(n, c_in, h, w, generator=g), torch.randn(c_in, c_out, k, k, generator=g)),
                          {"stride": s, "padding": p, "output_padding": op}, note=note))
    cases.insert(6, Case((torch.randn(2, 2, 3, 4, generator=g), torch.randn(2, 3, 3, 3, generator=g)),
                         note="stride, padding, output_padding not given (defaults 1, 0, 0): 3 x 4, batch 2, "
                              "2 -> 3 channels"))
    cases.insert(7, Case((torch.randn(2, 2, 4, 3, generator=g, dtype=torch.float64) * 1e4,
                          torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64)),
                         {"stride": 2, "padding": 1, "output_padding": 1},
                         note="float64 values ~1e4, non-square 4 x 3, batch 2, stride 2, padding 1, output_padding 1: "
                              "the result keeps x's dtype"))
    return cases


ZERO_INSERTION = Exercise(
    "04.zero_insertion", title="transposed convolution = zero insertion + ordinary convolution",
    reference=zero_insertion_reference, cases=_zero_insertion_cases, tolerance=ACCUMULATED,
    hint="1) put x on a grid (H-1)*s + 1 wide with s - 1 zeros between values (z[..., ::s, ::s] = x); "
         "2) pad k - 1 - p on each side, plus output_padding at the bottom and right; "
         "3) F.conv2d with weight.flip(2, 3).transpose(0, 1) (flipped, and C_in/C_out swapped).",
    function="conv_transpose2d_zero_insertion",
    off_limits=TRANSPOSED, yourself="insert the zeros and use F.conv2d",
)

EXERCISES = (CONV1D_MATRIX, CONV_TRANSPOSE1D, CONV2D_MATRIX, VJP, ZERO_INSERTION)
