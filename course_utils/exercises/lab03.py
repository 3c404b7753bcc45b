"""Lab 03 exercises: upsampling — nearest, bed of nails, max unpooling, bilinear, transposed convolution.

Each check compares the student's function with the torch operator (``F.interpolate``,
``F.max_unpool2d``, ``F.conv_transpose2d``) on fixed cases (the lecture's 2 x 2 -> 4 x 4 examples, odd
sizes, stride larger than the kernel) and seeded random ones. Bed of nails has no torch operator: its
reference is :func:`course_utils.ops.upsampling.bed_of_nails`. The references validate their inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import validation
from course_utils.exercises.cases import rand_int
from course_utils.grading.exercise import ACCUMULATED, EXACT, Case, Exercise
from course_utils.ops import upsampling
from course_utils.ops.upsampling import check_transposed

LECTURE = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # the lecture's 2 x 2 input, as 1 x 1 x 2 x 2



def _images(g: torch.Generator, n: int, c: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=g)


# ---- 03.nearest and 03.bed_of_nails ----------------------------------------------------------
def nearest_reference(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=scale, mode="nearest")``, after checking the arguments."""
    validation.images("x", x)
    validation.integer("scale", scale, 1)
    return F.interpolate(x, scale_factor=scale, mode="nearest")


def _scale_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((LECTURE.clone(), 2), note="the lecture: 2 x 2 -> 4 x 4"),
        Case((LECTURE.clone(), 1), note="scale 1 changes nothing"),
        Case((torch.tensor([[[[5.0]]]]), 3), note="a single pixel, scale 3"),
        Case((_images(g, 1, 2, 3, 5), 2), note="odd, non-square size, 2 channels"),
    ]
    for _ in range(3):
        n, c, h, w, s = rand_int(g, 1, 3), rand_int(g, 1, 4), rand_int(g, 1, 9), rand_int(g, 1, 9), rand_int(g, 2, 4)
        cases.append(Case((_images(g, n, c, h, w), s), note=f"random: {n} x {c} x {h} x {w}, scale {s}"))
    return cases


NEAREST = Exercise(
    "03.nearest", "nearest-neighbour upsampling", nearest_reference, _scale_cases,
    hint="output pixel (i, j) copies input pixel (i // s, j // s): x.repeat_interleave(s, dim=2) does it for rows.",
    function="nearest_upsample",
)

BED_OF_NAILS = Exercise(
    "03.bed_of_nails", "bed of nails: value at the top-left of each block, zeros elsewhere",
    upsampling.bed_of_nails, _scale_cases,
    hint="start from zeros of shape N x C x sH x sW and assign x to out[:, :, ::s, ::s].",
    function="bed_of_nails",
)


# ---- 03.max_unpool ---------------------------------------------------------------------------
def max_unpool_reference(x: torch.Tensor, indices: torch.Tensor, kernel_size: int, stride: int | None = None,
                         output_size: tuple[int, int] | None = None) -> torch.Tensor:
    """``F.max_unpool2d``, after the argument checks of :func:`course_utils.ops.upsampling.max_unpool2d`."""
    upsampling.max_unpool2d(x, indices, kernel_size, stride, output_size)  # validates (cheap)
    return F.max_unpool2d(x, indices, kernel_size, stride, output_size=output_size)


def _pooled(g: torch.Generator, shape: tuple[int, ...], kernel_size: int, stride: int | None,
            with_size: bool, note: str) -> Case:
    image = torch.randn(*shape, generator=g)
    values, indices = F.max_pool2d(image, kernel_size, stride, return_indices=True)
    kwargs = {"stride": stride} if stride is not None else {}
    if with_size:
        kwargs["output_size"] = tuple(shape[2:])
    return Case((values, indices, kernel_size), kwargs, note=note)


def _max_unpool_cases(g: torch.Generator) -> list[Case]:
    lecture = torch.tensor([[[[1.0, 2.0, 6.0, 3.0], [3.0, 5.0, 2.0, 1.0],
                              [1.0, 2.0, 2.0, 1.0], [7.0, 3.0, 4.0, 8.0]]]])
    values, indices = F.max_pool2d(lecture, 2, return_indices=True)
    cases = [
        Case((values, indices, 2), note="the lecture: 4 x 4 max-pooled to 2 x 2, unpooled back to 4 x 4"),
        _pooled(g, (1, 1, 7, 7), 2, None, True, "odd size 7 x 7: pass output_size=(7, 7)"),
        _pooled(g, (1, 1, 6, 6), 2, None, False, "no output_size: (h - 1) * stride + kernel_size"),
        _pooled(g, (2, 3, 5, 7), 3, 2, True, "overlapping windows (kernel 3, stride 2), batch and channels"),
        _pooled(g, (1, 2, 8, 9), 2, 3, True, "stride 3 > kernel 2: some pixels are in no window"),
    ]
    for _ in range(2):
        n, c, k = rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 2, 3)
        h, w = rand_int(g, k, 12), rand_int(g, k, 12)
        cases.append(_pooled(g, (n, c, h, w), k, None, True, f"random: {n} x {c} x {h} x {w}, kernel {k}"))
    return cases


MAX_UNPOOL = Exercise(
    "03.max_unpool", "max unpooling with the indices from max pooling", max_unpool_reference, _max_unpool_cases,
    hint="indices are flat positions row * W + col within each H x W channel: make zeros N x C x (H*W), "
         "scatter x into them along the last dim with scatter(2, indices.flatten(2), x.flatten(2)), reshape.",
    function="max_unpool",
)


# ---- 03.bilinear -----------------------------------------------------------------------------
def bilinear_reference(x: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """``F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)``, after checks."""
    validation.images("x", x)
    size = validation.size_pair("size", size)
    if not isinstance(align_corners, bool):
        raise TypeError(f"align_corners must be True or False, got {align_corners!r}")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


def _bilinear_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((LECTURE.clone(), (4, 4), True), note="the lecture: 2 x 2 -> 4 x 4, align_corners=True"),
        Case((LECTURE.clone(), (4, 4), False), note="the lecture: 2 x 2 -> 4 x 4, align_corners=False"),
        Case((torch.tensor([[[[3.0]]]]), (3, 2), False), note="a single pixel"),
        Case((_images(g, 1, 2, 3, 5), (7, 11), True), note="odd sizes, align_corners=True"),
        Case((_images(g, 1, 2, 3, 5), (7, 11), False), note="odd sizes, align_corners=False"),
        Case((_images(g, 1, 1, 4, 4), (4, 4), False), note="same size"),
    ]
    for _ in range(4):
        n, c, h, w = rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 1, 8), rand_int(g, 1, 8)
        size = (rand_int(g, h, 20), rand_int(g, w, 20))
        corners = bool(rand_int(g, 0, 1))
        cases.append(Case((_images(g, n, c, h, w), size, corners),
                          note=f"random: {h} x {w} -> {size[0]} x {size[1]}, align_corners={corners}"))
    return cases


BILINEAR = Exercise(
    "03.bilinear", "bilinear interpolation (both align_corners conventions)", bilinear_reference, _bilinear_cases,
    tolerance=ACCUMULATED,
    hint="per axis: source coordinate src = dst * (n_in - 1) / (n_out - 1) (align_corners=True; 0 if n_out == 1) "
         "or (dst + 0.5) * n_in / n_out - 0.5 clamped at 0 (False); i0 = floor(src) (at most n_in - 1), "
         "i1 = min(i0 + 1, n_in - 1), weight src - i0. Interpolate rows, then columns.",
    function="bilinear_upsample",
)


# ---- 03.output_size --------------------------------------------------------------------------
def _output_size_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((2, 3, 2, 1, 1), note="the lecture: 2 x 2 -> 4 x 4 with a 3 x 3 kernel, stride 2, padding 1"),
        Case((2, 3, 2, 1, 0), note="the same without output_padding: 3"),
        Case((4, 3, 1, 1, 0), note="stride 1, padding 1 keeps the size"),
        Case((3, 2, 3, 0, 0), note="stride 3 > kernel 2: gaps between the copies"),
        Case((5, 4, 2, 1, 0), note="kernel 4, stride 2, padding 1 doubles the size"),
        Case((1, 5, 1, 0, 0), note="a single input value: one copy of the filter"),
    ]
    for _ in range(4):
        k, s = rand_int(g, 1, 7), rand_int(g, 1, 4)
        n, p, op = rand_int(g, 1, 20), rand_int(g, 0, (k - 1) // 2), rand_int(g, 0, s - 1)
        cases.append(Case((n, k, s, p, op), note=f"random: n={n}, k={k}, s={s}, p={p}, output_padding={op}"))
    return cases


OUTPUT_SIZE = Exercise(
    "03.output_size", "output size of a transposed convolution", upsampling.conv_transpose_output_size,
    _output_size_cases, tolerance=EXACT,
    hint="the copies of the filter start stride apart: the last starts at (n - 1) * stride and is kernel_size "
         "long; then padding trims p at each end and output_padding adds op at the end.",
    function="conv_transpose_output_size",
)


# ---- 03.conv_transpose2d ---------------------------------------------------------------------
def conv_transpose2d_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                               stride: int = 1, padding: int = 0, output_padding: int = 0) -> torch.Tensor:
    """``F.conv_transpose2d``, after checking shapes, dtypes and the size rule."""
    check_transposed(x, weight, bias, stride, padding, output_padding)
    return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)


def _transposed_case(g: torch.Generator, n: int, c_in: int, c_out: int, h: int, w: int, k: int, s: int, p: int,
                     op: int, bias: bool, note: str, k_w: int | None = None) -> Case:
    x = _images(g, n, c_in, h, w)
    weight = torch.randn(c_in, c_out, k, k if k_w is None else k_w, generator=g)
    b = torch.randn(c_out, generator=g) if bias else None
    return Case((x, weight, b), {"stride": s, "padding": p, "output_padding": op}, note=note)


def _conv_transpose_cases(g: torch.Generator) -> list[Case]:
    lecture_kernel = torch.tensor([[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]) / 4
    cases = [
        Case((LECTURE.clone(), lecture_kernel, None), {"stride": 2, "padding": 1, "output_padding": 1},
             note="the lecture: 2 x 2 -> 4 x 4, 3 x 3 kernel, stride 2, padding 1, output_padding 1"),
        _transposed_case(g, 1, 1, 1, 3, 3, 3, 1, 0, 0, False, "stride 1, no padding: 3 x 3 -> 5 x 5"),
        _transposed_case(g, 1, 1, 1, 3, 4, 2, 3, 0, 0, False, "stride 3 > kernel 2: gaps of zeros"),
        _transposed_case(g, 1, 2, 3, 3, 5, 4, 2, 1, 0, True, "kernel 4, stride 2, padding 1; 2 -> 3 channels, bias"),
        _transposed_case(g, 2, 3, 2, 5, 3, 3, 2, 0, 1, False, "batch of 2, odd sizes, output_padding 1"),
        _transposed_case(g, 1, 1, 2, 4, 4, 5, 3, 2, 2, True, "kernel 5, stride 3, padding 2, output_padding 2"),
        _transposed_case(g, 1, 2, 1, 3, 2, 2, 2, 0, 0, False, "a non-square 2 x 3 kernel", k_w=3),
    ]
    for _ in range(3):
        k, s = rand_int(g, 1, 5), rand_int(g, 1, 4)
        p, op = rand_int(g, 0, (k - 1) // 2), rand_int(g, 0, s - 1)
        n, c_in, c_out, h, w = (rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 1, 3),
                                rand_int(g, 1, 6), rand_int(g, 1, 6))
        cases.append(_transposed_case(g, n, c_in, c_out, h, w, k, s, p, op, bool(rand_int(g, 0, 1)),
                                      f"random: {c_in} -> {c_out} channels, {h} x {w}, k={k}, s={s}, p={p}, op={op}"))
    return cases


CONV_TRANSPOSE2D = Exercise(
    "03.conv_transpose2d", "2-D transposed convolution (batches, channels, stride, padding)",
    conv_transpose2d_reference, _conv_transpose_cases, tolerance=ACCUMULATED,
    hint="build the untrimmed result of size (H-1)*s + k (+ room for output_padding); for each input pixel (i, j) "
         "add the copy x[:, :, i, j] weighted filter (einsum('nc,cdkl->ndkl', ...)) at rows i*s .. i*s+k-1, "
         "columns j*s .. j*s+k-1; then keep rows/cols padding .. padding + H' - 1, and add the bias.",
    function="conv_transpose2d",
)

EXERCISES = (NEAREST, BED_OF_NAILS, MAX_UNPOOL, BILINEAR, OUTPUT_SIZE, CONV_TRANSPOSE2D)
