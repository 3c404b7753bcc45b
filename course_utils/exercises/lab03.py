"""Lab 03 exercises: upsampling — nearest, bed of nails, max unpooling, bilinear, transposed convolution.

Each check compares the student's function with the course's from-scratch implementation in
:mod:`course_utils.ops.upsampling` (which tests/test_lab03.py checks against the torch operators
``F.interpolate``, ``F.max_unpool2d``, ``F.conv_transpose2d``) on fixed cases (the lecture's 2 x 2 -> 4 x 4
examples, non-square and batched images, odd sizes, stride larger than the kernel, default arguments, float64)
and seeded random ones. The students write them from scratch: the torch operators are off-limits inside
their functions. The references validate their inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_utils.exercises.cases import rand_int
from course_utils.grading.compare import compare, compare_sums
from course_utils.grading.exercise import (
    ACCUMULATED,
    EXACT,
    FLOAT32,
    Case,
    Exercise,
    Tolerance,
)
from course_utils.ops import upsampling

LECTURE = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # the lecture's 2 x 2 input, as 1 x 1 x 2 x 2



def _images(g: torch.Generator, n: int, c: int, h: int, w: int, dtype: torch.dtype = torch.float32,
            scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=g, dtype=dtype) * scale


def is_an_input(case: Case, got: object) -> bool:
    """True if ``got`` is one of the case's input tensors, or a view of one (it shares its memory)."""
    if not isinstance(got, torch.Tensor) or got.device.type == "meta" or got.numel() == 0:
        return False
    ptr = got.untyped_storage().data_ptr()
    return any(isinstance(a, torch.Tensor) and a.device == got.device and a.numel() > 0
               and a.untyped_storage().data_ptr() == ptr for a in (*case.args, *case.kwargs.values()))


def new_tensor(tolerance: Tolerance = FLOAT32, what: str = "the library function") -> Callable:
    """``verify``: compare with the reference, then insist on a new tensor (never the input or a view of it)."""
    def verify(case: Case, got: object, expected: object) -> str | None:
        problem = compare(expected, got, *tolerance, exact_dtype=True)
        if problem is None and is_an_input(case, got):
            problem = ("your result is the input tensor itself (or a view of it): return a new tensor (e.g. "
                       f"x.clone()), as {what} does, so that changing one does not change the other")
        return problem
    return verify


#: torch's own upsampling, off-limits in the exercises that ask for it from scratch
INTERPOLATE = ("torch.nn.functional.interpolate", "torch.nn.functional.upsample",
               "torch.nn.functional.upsample_nearest", "torch.nn.functional.upsample_bilinear",
               "torch.nn.functional.grid_sample", "torch._C._nn.upsample_nearest2d",
               "torch._C._nn.upsample_bilinear2d", "torch._C._nn._upsample_nearest_exact2d",
               "torch._C._nn._upsample_bilinear2d_aa")
#: torch's (and the course's) transposed convolutions, off-limits where the student writes one
TRANSPOSED = ("torch.nn.functional.conv_transpose1d", "torch.nn.functional.conv_transpose2d",
              "torch.nn.functional.conv_transpose3d", "torch.conv_transpose1d", "torch.conv_transpose2d",
              "torch.conv_transpose3d", "torch.convolution", "torch._convolution", "torch.nn.grad.conv1d_input",
              "torch.nn.grad.conv2d_input", "course_utils.ops.upsampling.conv_transpose2d")


# ---- 03.nearest and 03.bed_of_nails ----------------------------------------------------------
#: the references are the course's from-scratch implementations (:mod:`course_utils.ops.upsampling`, checked
#: against F.interpolate / F.max_unpool2d / F.conv_transpose2d in tests/test_lab03.py): a student's copy of a
#: reference then passes a check whose torch operator is off-limits. They validate their arguments.
nearest_reference = upsampling.nearest_upsample


def _scale_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((LECTURE.clone(), 2), note="the lecture: 2 x 2 -> 4 x 4"),
        Case((LECTURE.clone(), 1), note="scale 1: the same values, in a new tensor"),
        Case((torch.tensor([[[[5.0]]]]), 3), note="a single pixel, scale 3"),
        Case((_images(g, 2, 3, 3, 5), 2), note="non-square 3 x 5 image, batch 2, 3 channels, scale 2"),
        Case((_images(g, 1, 2, 4, 3, torch.float64), 3),
             note="float64, non-square 4 x 3 image, 2 channels, scale 3: the result keeps x's dtype"),
    ]
    for _ in range(3):
        n, c, h, w, s = rand_int(g, 1, 3), rand_int(g, 1, 4), rand_int(g, 1, 9), rand_int(g, 1, 9), rand_int(g, 2, 4)
        cases.append(Case((_images(g, n, c, h, w), s), note=f"random: {n} x {c} x {h} x {w}, scale {s}"))
    return cases


NEAREST = Exercise(
    "03.nearest", title="nearest-neighbour upsampling", reference=nearest_reference, cases=_scale_cases,
    hint="output pixel (i, j) copies input pixel (i // s, j // s): x.repeat_interleave(s, dim=2) does it for rows.",
    function="nearest_upsample", verify=new_tensor(what="F.interpolate"),
    off_limits=INTERPOLATE,
    yourself="copy the values into blocks yourself (indexing or repeat_interleave)",
)

BED_OF_NAILS = Exercise(
    "03.bed_of_nails", title="bed of nails: value at the top-left of each block, zeros elsewhere",
    reference=upsampling.bed_of_nails, cases=_scale_cases,
    hint="start from zeros of shape N x C x sH x sW (x.new_zeros: x's dtype) and assign x to out[:, :, ::s, ::s].",
    function="bed_of_nails", verify=new_tensor(what="every upsampler"),
    off_limits=INTERPOLATE + TRANSPOSED + ("torch.nn.functional.max_unpool2d",),
    yourself="place the values yourself (zeros, then assign x to every s-th pixel)",
)


# ---- 03.max_unpool ---------------------------------------------------------------------------
max_unpool_reference = upsampling.max_unpool2d


def _pooled(g: torch.Generator, shape: tuple[int, ...], kernel_size: int, stride: int | None,
            with_size: bool, note: str, dtype: torch.dtype = torch.float32) -> Case:
    image = torch.randn(*shape, generator=g, dtype=dtype)
    values, indices = F.max_pool2d(image, kernel_size, stride, return_indices=True)
    kwargs: dict[str, object] = {"stride": stride} if stride is not None else {}
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
        _pooled(g, (1, 1, 6, 6), 2, None, False,
                "no output_size, no stride (stride = kernel_size): (h - 1) * stride + kernel_size"),
        _pooled(g, (2, 2, 7, 9), 3, 2, False,
                "no output_size, kernel 3, stride 2, non-square 7 x 9, batch 2, 2 channels: (h - 1) * stride + kernel"),
        _pooled(g, (2, 3, 5, 7), 3, 2, True, "overlapping windows (kernel 3, stride 2), odd non-square 5 x 7, batch 2, "
                                             "3 channels"),
        _pooled(g, (1, 2, 8, 9), 2, 3, True, "stride 3 > kernel 2, non-square 8 x 9: some pixels are in no window"),
        _pooled(g, (1, 2, 6, 4), 2, None, False, "float64, non-square 6 x 4, 2 channels: the result keeps x's dtype",
                dtype=torch.float64),
    ]
    for _ in range(2):
        n, c, k = rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 2, 3)
        h, w = rand_int(g, k, 12), rand_int(g, k, 12)
        cases.append(_pooled(g, (n, c, h, w), k, None, True, f"random: {n} x {c} x {h} x {w}, kernel {k}"))
    return cases


MAX_UNPOOL = Exercise(
    "03.max_unpool", title="max unpooling with the indices from max pooling", reference=max_unpool_reference,
    cases=_max_unpool_cases,
    hint="indices are flat positions row * W + col within each H x W channel: make zeros N x C x (H*W), "
         "scatter x into them along the last dim with scatter(2, indices.flatten(2), x.flatten(2)), reshape.",
    function="max_unpool",
    off_limits=("torch.nn.functional.max_unpool1d", "torch.nn.functional.max_unpool2d",
                "torch.nn.functional.max_unpool3d", "torch._C._nn.max_unpool2d"),
    yourself="put the values back yourself (scatter them into zeros)",
)


# ---- 03.bilinear -----------------------------------------------------------------------------
bilinear_reference = upsampling.bilinear_upsample


def _bilinear_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((LECTURE.clone(), (4, 4), True), note="the lecture: 2 x 2 -> 4 x 4, align_corners=True"),
        Case((LECTURE.clone(), (4, 4), False), note="the lecture: 2 x 2 -> 4 x 4, align_corners=False"),
        Case((torch.tensor([[[[3.0]]]]), (3, 2), False), note="a single pixel"),
        Case((_images(g, 2, 2, 3, 5), (7, 11), True), note="non-square 3 x 5 -> 7 x 11, batch 2, 2 channels, "
                                                          "align_corners=True"),
        Case((_images(g, 2, 3, 3, 5), (7, 11), False), note="non-square 3 x 5 -> 7 x 11, batch 2, 3 channels, "
                                                           "align_corners=False"),
        Case((_images(g, 1, 1, 4, 4), (4, 4), False), note="same size 4 x 4: the same values, in a new tensor"),
        Case((_images(g, 1, 2, 3, 5), (1, 4), True), note="align_corners=True and an output side of 1: "
                                                         "3 x 5 -> 1 x 4 samples row 0"),
        Case((_images(g, 1, 2, 2, 3), (5, 4)), note="align_corners not given: the default, False (2 x 3 -> 5 x 4)"),
        Case((_images(g, 1, 2, 5, 3, torch.float64, 1e4), (9, 8)), {"align_corners": True},
             note="float64 values ~1e4, 5 x 3 -> 9 x 8, align_corners=True by keyword: the result keeps x's dtype"),
        Case((_images(g, 2, 1, 3, 4, scale=1e-4), (6, 10), False), note="values ~1e-4, 3 x 4 -> 6 x 10, "
                                                                        "align_corners=False"),
    ]
    for _ in range(3):
        n, c, h, w = rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 1, 8), rand_int(g, 1, 8)
        size = (rand_int(g, h, 20), rand_int(g, w, 20))
        corners = bool(rand_int(g, 0, 1))
        cases.append(Case((_images(g, n, c, h, w), size, corners),
                          note=f"random: {h} x {w} -> {size[0]} x {size[1]}, align_corners={corners}"))
    return cases


BILINEAR = Exercise(
    "03.bilinear", title="bilinear interpolation (both align_corners conventions)", reference=bilinear_reference,
    cases=_bilinear_cases,
    tolerance=ACCUMULATED,
    hint="per axis: source coordinate src = dst * (n_in - 1) / (n_out - 1) (align_corners=True; 0 if n_out == 1) "
         "or (dst + 0.5) * n_in / n_out - 0.5 clamped at 0 (False); i0 = floor(src) (at most n_in - 1), "
         "i1 = min(i0 + 1, n_in - 1), weight src - i0. Interpolate rows, then columns.",
    function="bilinear_upsample", verify=new_tensor(ACCUMULATED, "F.interpolate"),
    off_limits=INTERPOLATE,
    yourself="write the interpolation yourself",
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
        Case((3, 3), note="stride, padding, output_padding not given (defaults 1, 0, 0): 3 -> 5"),
        Case((2, 3, 2), note="padding and output_padding not given: stride 2, 2 -> 5"),
        Case((4, 3, 2, 1), note="output_padding not given: stride 2, padding 1, 4 -> 7"),
        Case((2, 3), {"stride": 2, "padding": 1, "output_padding": 1}, note="the lecture's layer, by keyword"),
    ]
    for _ in range(4):
        k, s = rand_int(g, 1, 7), rand_int(g, 1, 4)
        n, p, op = rand_int(g, 1, 20), rand_int(g, 0, (k - 1) // 2), rand_int(g, 0, s - 1)
        cases.append(Case((n, k, s, p, op), note=f"random: n={n}, k={k}, s={s}, p={p}, output_padding={op}"))
    return cases


OUTPUT_SIZE = Exercise(
    "03.output_size", title="output size of a transposed convolution", reference=upsampling.conv_transpose_output_size,
    cases=_output_size_cases, tolerance=EXACT,
    hint="the copies of the filter start stride apart: the last starts at (n - 1) * stride and is kernel_size "
         "long; then padding trims p at each end and output_padding adds op at the end.",
    function="conv_transpose_output_size",
)


# ---- 03.conv_transpose2d ---------------------------------------------------------------------
conv_transpose2d_reference = upsampling.conv_transpose2d


def _transposed_case(g: torch.Generator, n: int, c_in: int, c_out: int, h: int, w: int, k: int, s: int, p: int,
                     op: int, bias: bool, note: str, k_w: int | None = None, dtype: torch.dtype = torch.float32,
                     scale: float = 1.0) -> Case:
    x = _images(g, n, c_in, h, w, dtype, scale)
    weight = torch.randn(c_in, c_out, k, k if k_w is None else k_w, generator=g, dtype=dtype)
    b = torch.randn(c_out, generator=g, dtype=dtype) * scale if bias else None
    return Case((x, weight, b), {"stride": s, "padding": p, "output_padding": op}, note=note)


def _conv_transpose_cases(g: torch.Generator) -> list[Case]:
    lecture_kernel = torch.tensor([[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]) / 4
    cases = [
        Case((LECTURE.clone(), lecture_kernel, None), {"stride": 2, "padding": 1, "output_padding": 1},
             note="the lecture: 2 x 2 -> 4 x 4, 3 x 3 kernel, stride 2, padding 1, output_padding 1"),
        _transposed_case(g, 1, 1, 1, 3, 3, 3, 1, 0, 0, False, "stride 1, no padding: 3 x 3 -> 5 x 5"),
        _transposed_case(g, 1, 1, 1, 3, 4, 2, 3, 0, 0, False, "stride 3 > kernel 2: gaps of zeros, 3 x 4 image"),
        _transposed_case(g, 1, 2, 3, 3, 5, 4, 2, 1, 0, True, "kernel 4, stride 2, padding 1; 2 -> 3 channels, bias"),
        _transposed_case(g, 2, 3, 2, 5, 3, 3, 2, 0, 1, False, "batch of 2, odd sizes, output_padding 1"),
        _transposed_case(g, 1, 1, 2, 4, 4, 5, 3, 2, 2, True, "kernel 5, stride 3, padding 2, output_padding 2"),
        _transposed_case(g, 1, 2, 1, 3, 2, 2, 2, 0, 0, False,
                         "a non-square 2 x 3 kernel, 3 x 2 image, 2 -> 1 channels, stride 2",
                         k_w=3),
        _transposed_case(g, 2, 2, 2, 4, 3, 3, 2, 1, 1, True,
                         "float64, non-square 4 x 3 image and 3 x 2 kernel, batch 2, "
                         "2 channels, stride 2, bias: the result keeps x's dtype", k_w=2, dtype=torch.float64),
        _transposed_case(g, 1, 3, 2, 3, 4, 3, 2, 1, 1, True, "values ~1e4: 3 x 4, 3 -> 2 channels, stride 2, bias",
                         scale=1e4),
        _transposed_case(g, 2, 1, 3, 2, 3, 4, 2, 1, 0, True, "values ~1e-4: 2 x 3, batch 2, 1 -> 3 channels, kernel 4, "
                         "stride 2, bias", scale=1e-4),
    ]
    x, weight = _images(g, 1, 2, 3, 4), torch.randn(2, 3, 2, 3, generator=g)
    cases.append(Case((x, weight), note="bias, stride, padding, output_padding not given (defaults None, 1, 0, 0): "
                                        "3 x 4, 2 -> 3 channels, 2 x 3 kernel"))
    for _ in range(2):
        k, s = rand_int(g, 1, 5), rand_int(g, 1, 4)
        p, op = rand_int(g, 0, (k - 1) // 2), rand_int(g, 0, s - 1)
        n, c_in, c_out, h, w = (rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 1, 3),
                                rand_int(g, 1, 6), rand_int(g, 1, 6))
        cases.append(_transposed_case(g, n, c_in, c_out, h, w, k, s, p, op, bool(rand_int(g, 0, 1)),
                                      f"random: {c_in} -> {c_out} channels, {h} x {w}, k={k}, s={s}, p={p}, op={op}"))
    return cases


def _sums_verify(case: Case, got: object, expected: torch.Tensor) -> str | None:
    """Each output sums copies of the filter: values ~1e4 may cancel to ~10, which any order of the sums gets
    right only to ~1e-3 (compare_sums)."""
    return compare_sums(expected, got, *ACCUMULATED, exact_dtype=True)


CONV_TRANSPOSE2D = Exercise(
    "03.conv_transpose2d", title="2-D transposed convolution (batches, channels, stride, padding)",
    reference=conv_transpose2d_reference, cases=_conv_transpose_cases, tolerance=ACCUMULATED, verify=_sums_verify,
    hint="build the untrimmed result of size (H-1)*s + k (+ room for output_padding); for each input pixel (i, j) "
         "add the copy x[:, :, i, j] weighted filter (einsum('nc,cdkl->ndkl', ...)) at rows i*s .. i*s+k-1, "
         "columns j*s .. j*s+k-1; then keep rows/cols padding .. padding + H' - 1, and add the bias.",
    function="conv_transpose2d",
    # the layer is learnable: its result must carry the gradients with respect to x, weight and bias
    gradient=(0, 1, 2),
    off_limits=TRANSPOSED, yourself="write the transposed convolution yourself (copies of the filter, summed)",
    allowed=("course_utils.ops.upsampling.conv_transpose_output_size",),  # exercise 03.output_size, after fallback
)

EXERCISES = (NEAREST, BED_OF_NAILS, MAX_UNPOOL, BILINEAR, OUTPUT_SIZE, CONV_TRANSPOSE2D)
