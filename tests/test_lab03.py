"""Lab 03: the upsampling references against torch, their input checks, and the checks' verdicts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _student import as_student, student_module

from course_utils.exercises import lab03
from course_utils.grading import evaluate, get_exercise, lab_exercises
from course_utils.ops import upsampling
from course_utils.viz import conv as viz_conv

up = student_module(upsampling)  # the course functions, as a student would copy them


def _random_transposed_case(g: torch.Generator):
    k, s = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 5, (1,), generator=g))
    p, op = int(torch.randint(0, k, (1,), generator=g)), int(torch.randint(0, s, (1,), generator=g))
    n, c_in, c_out = (int(v) for v in torch.randint(1, 4, (3,), generator=g))
    h, w = (int(v) for v in torch.randint(1, 8, (2,), generator=g))
    x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_in, c_out, k, k + 1, generator=g, dtype=torch.float64)   # non-square kernel too
    bias = torch.randn(c_out, generator=g, dtype=torch.float64) if s % 2 else None
    return x, weight, bias, s, p, op


def test_lab03_exercises_are_the_ones_the_notebook_checks():
    assert [e.id for e in lab_exercises("03")] == [
        "03.nearest", "03.bed_of_nails", "03.max_unpool", "03.bilinear", "03.output_size", "03.conv_transpose2d"]


@pytest.mark.parametrize("exercise", [e.id for e in lab_exercises("03")])
def test_references_pass_their_own_checks_with_other_seeds(exercise):
    for seed in (0, 11, 12345):
        result = evaluate(exercise, as_student(get_exercise(exercise).reference), seed)
        assert result.passed, result.message


# ---- references from scratch == torch --------------------------------------------------------
def test_conv_transpose2d_from_scratch_matches_torch_on_random_cases():
    g = torch.Generator().manual_seed(0)
    tried = 0
    while tried < 60:
        x, weight, bias, s, p, op = _random_transposed_case(g)
        try:
            expected = F.conv_transpose2d(x, weight, bias, s, p, op)
        except RuntimeError:           # torch refuses (output would be empty): we must refuse too
            with pytest.raises(ValueError, match="trims everything"):
                up.conv_transpose2d(x, weight, bias, s, p, op)
            continue
        tried += 1
        torch.testing.assert_close(up.conv_transpose2d(x, weight, bias, s, p, op), expected)
        assert up.conv_transpose_output_size(x.shape[2], weight.shape[2], s, p, op) == expected.shape[2]
        assert up.conv_transpose_output_size(x.shape[3], weight.shape[3], s, p, op) == expected.shape[3]


def test_fixed_upsamplers_match_torch_on_random_sizes():
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        n, c = (int(v) for v in torch.randint(1, 4, (2,), generator=g))
        h, w = (int(v) for v in torch.randint(1, 10, (2,), generator=g))
        scale = int(torch.randint(1, 5, (1,), generator=g))
        x = torch.randn(n, c, h, w, generator=g)
        torch.testing.assert_close(up.nearest_upsample(x, scale), F.interpolate(x, scale_factor=scale, mode="nearest"))
        size = (h + int(torch.randint(0, 12, (1,), generator=g)), w + int(torch.randint(0, 12, (1,), generator=g)))
        for corners in (True, False):
            torch.testing.assert_close(up.bilinear_upsample(x, size, corners),
                                       F.interpolate(x, size=size, mode="bilinear", align_corners=corners))


def test_bed_of_nails_is_a_transposed_convolution_with_a_one_hot_kernel():
    x = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(2))
    for scale in (1, 2, 3):
        nail = torch.zeros(3, 3, scale, scale)
        nail[torch.arange(3), torch.arange(3), 0, 0] = 1      # channel c -> channel c, top-left tap
        torch.testing.assert_close(up.bed_of_nails(x, scale), F.conv_transpose2d(x, nail, stride=scale))


@pytest.mark.parametrize("shape,kernel,stride", [((2, 3, 7, 7), 2, None), ((1, 2, 9, 8), 3, 2), ((1, 1, 8, 10), 2, 3)])
def test_max_unpool_matches_torch(shape, kernel, stride):
    image = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    values, indices = F.max_pool2d(image, kernel, stride, return_indices=True)
    size = tuple(shape[2:])
    torch.testing.assert_close(up.max_unpool2d(values, indices, kernel, stride, size),
                               F.max_unpool2d(values, indices, kernel, stride, output_size=size))
    default = tuple((n - 1) * (stride or kernel) + kernel for n in values.shape[2:])
    if indices.max() < default[0] * default[1]:     # the maxima fit the default size
        torch.testing.assert_close(up.max_unpool2d(values, indices, kernel, stride),
                                   F.max_unpool2d(values, indices, kernel, stride))
    else:                                            # a maximum sat in a row pooling dropped: say so
        with pytest.raises(ValueError, match="indices must be in"):
            up.max_unpool2d(values, indices, kernel, stride)


def test_bilinear_kernel_turns_a_transposed_convolution_into_bilinear_interpolation():
    x = torch.rand(1, 1, 9, 9, dtype=torch.float64)
    for scale in (2, 4):
        k = up.bilinear_kernel(scale).double()
        out = F.conv_transpose2d(x, k[None, None], stride=scale, padding=(k.shape[0] - scale + 1) // 2)
        ref = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        assert out.shape == ref.shape
        torch.testing.assert_close(out[..., scale:-scale, scale:-scale], ref[..., scale:-scale, scale:-scale])


def test_overlap_counts_show_the_checkerboard():
    assert set(viz_conv.overlap_counts(5, 3, 2).unique().tolist()) == {1, 2, 4}
    assert set(viz_conv.overlap_counts(5, 4, 2, 1)[1:-1, 1:-1].unique().tolist()) == {4}
    assert viz_conv.overlap_counts(3, 2, 3).sum() == 9 * 4      # stride > kernel: no overlaps, gaps of 0
    assert (viz_conv.overlap_counts(3, 2, 3) == 0).any()


# ---- bad inputs: clear errors ----------------------------------------------------------------
X = torch.randn(1, 2, 3, 3)
W = torch.randn(2, 1, 3, 3)


@pytest.mark.parametrize("call,error,message", [
    (lambda: up.conv_transpose2d(X, W, stride=-1), ValueError, "stride must be >= 1"),
    (lambda: up.conv_transpose2d(X, W, stride=2.0), TypeError, "stride must be an int"),
    (lambda: up.conv_transpose2d(X, W, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: up.conv_transpose2d(X, W, stride=2, output_padding=2), ValueError, "smaller than stride"),
    (lambda: up.conv_transpose2d(X, W, padding=3), ValueError, "trims everything"),
    (lambda: up.conv_transpose2d(X, torch.randn(3, 1, 3, 3)), ValueError, "mismatched channels"),
    (lambda: up.conv_transpose2d(X[0], W), ValueError, "4-D"),
    (lambda: up.conv_transpose2d(X, W[0]), ValueError, "4-D"),
    (lambda: up.conv_transpose2d(X.long(), W), TypeError, "floating-point"),
    (lambda: up.conv_transpose2d(X.double(), W), TypeError, "same dtype"),
    (lambda: up.conv_transpose2d(X, W, torch.randn(2)), ValueError, "bias must have C_out=1"),
    (lambda: up.conv_transpose2d(X.numpy(), W), TypeError, "torch.Tensor"),
    (lambda: up.conv_transpose_output_size(0, 3), ValueError, "n must be >= 1"),
    (lambda: up.nearest_upsample(X, 0), ValueError, "scale must be >= 1"),
    (lambda: up.bed_of_nails(X, True), TypeError, "scale must be an int"),
    (lambda: up.bilinear_upsample(X, 8), TypeError, "pair"),
    (lambda: up.bilinear_upsample(X, (8, 0)), ValueError, "size\\[1\\] must be >= 1"),
    (lambda: up.bilinear_upsample(X, (8, 8), align_corners="yes"), TypeError, "align_corners"),
    (lambda: up.max_unpool2d(X, torch.zeros(1, 2, 3, 3), 2), TypeError, "integer"),
    (lambda: up.max_unpool2d(X, torch.zeros(1, 2, 3, 2, dtype=torch.long), 2), ValueError, "shape of x"),
    (lambda: up.max_unpool2d(X, torch.full((1, 2, 3, 3), 99), 2), ValueError, "indices must be in \\[0, 36\\)"),
])
def test_bad_inputs_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_exercise_references_validate_too():
    with pytest.raises(ValueError, match="mismatched channels"):
        lab03.conv_transpose2d_reference(X, torch.randn(3, 1, 3, 3))
    with pytest.raises(ValueError, match="4-D"):
        lab03.nearest_reference(X[0], 2)
    with pytest.raises(TypeError, match="pair"):
        lab03.bilinear_reference(X, [4])
    with pytest.raises(ValueError, match="indices must be in"):
        lab03.max_unpool_reference(X, torch.full((1, 2, 3, 3), -1), 2)


# ---- the checks reject plausible mistakes ----------------------------------------------------
def _verdict(exercise, fn):
    result = evaluate(exercise, fn)
    assert not result.passed
    return result


def test_check_rejects_padding_trimmed_at_one_end_only():
    def trims_only_the_start(x, weight, bias=None, stride=1, padding=0, output_padding=0):
        full = up.conv_transpose2d(x, weight, bias, stride, 0, 0)   # F.conv_transpose2d is off-limits
        return F.pad(full, (0, output_padding, 0, output_padding))[:, :, padding:, padding:]

    result = _verdict("03.conv_transpose2d", trims_only_the_start)
    assert result.status == "failed"
    assert "case 1 of" in result.message and "the lecture" in result.message
    assert "wrong shape: expected (1, 1, 4, 4), got (1, 1, 5, 5)" in result.message
    assert "hint:" in result.message


def test_check_rejects_a_forgotten_output_padding_and_bias():
    def no_output_padding(x, weight, bias=None, stride=1, padding=0, output_padding=0):
        return up.conv_transpose2d(x, weight, bias, stride, padding)

    def no_bias(x, weight, bias=None, stride=1, padding=0, output_padding=0):
        return up.conv_transpose2d(x, weight, None, stride, padding, output_padding)

    assert "wrong shape" in _verdict("03.conv_transpose2d", no_output_padding).message
    result = _verdict("03.conv_transpose2d", no_bias)
    assert "bias" in result.message and "values differ" in result.message


def test_check_rejects_off_by_one_output_size():
    result = _verdict("03.output_size", lambda n, k, s=1, p=0, op=0: n * s - 2 * p + k + op)
    assert "expected 4, got 6" in result.message


def test_check_rejects_bilinear_without_clamping():
    def unclamped(x, size, align_corners=False):
        if align_corners:
            return up.bilinear_upsample(x, size, True)                  # F.interpolate is off-limits
        out = []
        for n_in, n_out in zip(x.shape[2:], size):
            u = (torch.arange(n_out) + 0.5) * n_in / n_out - 0.5          # no clamp at 0
            i0 = u.floor().long().clamp(0, n_in - 1)
            out.append((i0, (i0 + 1).clamp(max=n_in - 1), u - u.floor()))
        (r0, r1, wr), (c0, c1, wc) = out
        rows = x[:, :, r0] * (1 - wr)[:, None] + x[:, :, r1] * wr[:, None]
        return rows[..., c0] * (1 - wc) + rows[..., c1] * wc

    result = _verdict("03.bilinear", unclamped)
    assert "align_corners=False" in result.message and "values differ" in result.message


def test_check_rejects_nearest_that_is_bed_of_nails_and_reports_errors_and_in_place_changes():
    assert "values differ" in _verdict("03.nearest", up.bed_of_nails).message

    def crashes(x, scale):
        return x @ torch.ones(scale + 1)

    result = _verdict("03.nearest", crashes)
    assert result.status == "error" and "RuntimeError" in result.message

    def scatters_in_place(x, indices, kernel_size, stride=None, output_size=None):
        out = up.max_unpool2d(x, indices, kernel_size, stride, output_size)   # F.max_unpool2d is off-limits
        x.zero_()
        return out

    assert _verdict("03.max_unpool", scatters_in_place).status == "mutated"


def test_check_rejects_max_unpool_that_ignores_output_size():
    def ignores_size(x, indices, kernel_size, stride=None, output_size=None):   # F.max_unpool2d is off-limits
        stride = stride or kernel_size
        h, w = ((n - 1) * stride + kernel_size for n in x.shape[2:])
        inside = indices < h * w                  # maxima in the dropped border are lost
        out = x.new_zeros(*x.shape[:2], h * w).scatter(2, (indices * inside).flatten(2), (x * inside).flatten(2))
        return out.reshape(*x.shape[:2], h, w)

    result = _verdict("03.max_unpool", ignores_size)
    assert "odd size 7 x 7" in result.message
    assert "wrong shape: expected (1, 1, 7, 7), got (1, 1, 6, 6)" in result.message


# ---- drawing helpers -------------------------------------------------------------------------
def test_draw_transposed_conv_1d_returns_the_transposed_convolution():
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(4)
    for stride, padding in [(1, 0), (2, 1), (3, 0), (2, 2)]:
        a, w = torch.randn(4, generator=g), torch.randn(5, generator=g)
        result = viz_conv.draw_transposed_conv_1d(a, w, stride, padding)
        expected = F.conv_transpose1d(a[None, None], w[None, None], stride=stride, padding=padding)[0, 0]
        torch.testing.assert_close(result, expected)
        plt.close("all")


def test_widget_helpers():
    import matplotlib.pyplot as plt

    assert viz_conv.overlap_kind(3, 2).startswith("uneven")
    assert viz_conv.overlap_kind(4, 2).startswith("even")
    assert viz_conv.overlap_kind(2, 3).startswith("gaps")
    fig = viz_conv.show_transposed_conv_pattern(5, 3, 2, 1)
    assert [ax.get_title() for ax in fig.axes] == ["overlap counts, 9 x 9",
                                                   "transposed convolution, stride 2: output length 9"]
    plt.close(fig)
    with pytest.raises(ValueError, match="trims everything"):
        viz_conv.show_transposed_conv_pattern(5, 1, 1, 3)


def test_format_matrix_is_stable_text():
    assert viz_conv.format_matrix(torch.tensor([[1.0, -0.0001], [0.125, 10.0]])) == "[   1    0]\n[0.12   10]"
    assert viz_conv.format_matrix([["x", "y"], ["0", "z"]]) == "[x y]\n[0 z]"
