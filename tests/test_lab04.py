"""Lab 04: the convolution matrices against torch, their input checks, and the checks' verdicts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _student import as_student, student_module

from course_utils.exercises import lab04
from course_utils.grading import evaluate, get_exercise, lab_exercises
from course_utils.ops import conv_matrix
from course_utils.viz import conv as viz_conv

cm = student_module(conv_matrix)  # the course functions, as a student would copy them

KERNEL = ["x", "y", "z"]


def test_lab04_exercises_are_the_ones_the_notebook_checks():
    assert [e.id for e in lab_exercises("04")] == [
        "04.conv1d_matrix", "04.conv_transpose1d", "04.conv2d_matrix", "04.vjp", "04.zero_insertion"]


@pytest.mark.parametrize("exercise", [e.id for e in lab_exercises("04")])
def test_references_pass_their_own_checks_with_other_seeds(exercise):
    for seed in (0, 5, 2024):
        result = evaluate(exercise, as_student(get_exercise(exercise).reference), seed)
        assert result.passed, result.message


# ---- the lecture's example, exactly ----------------------------------------------------------
def test_lecture_example_stride_1():
    codes = cm.conv1d_matrix(torch.tensor([1.0, 2.0, 3.0]), 4, stride=1, padding=1)
    assert codes.tolist() == [[1, 2, 3, 0, 0, 0], [0, 1, 2, 3, 0, 0], [0, 0, 1, 2, 3, 0], [0, 0, 0, 1, 2, 3]]
    assert viz_conv.symbolic_product(codes, KERNEL, ["0", "a", "b", "c", "d", "0"]) == [
        "ay+bz", "ax+by+cz", "bx+cy+dz", "cx+dy"]
    assert viz_conv.symbolic_product(codes, KERNEL, list("abcd"), transpose=True) == [
        "ax", "ay+bx", "az+by+cx", "bz+cy+dx", "cz+dy", "dz"]


def test_lecture_example_stride_2():
    codes = cm.conv1d_matrix(torch.tensor([1.0, 2.0, 3.0]), 4, stride=2, padding=1)
    assert codes.tolist() == [[1, 2, 3, 0, 0, 0], [0, 0, 1, 2, 3, 0]]
    assert viz_conv.symbolic_product(codes, KERNEL, list("ab"),
                                     transpose=True) == ["ax", "ay", "az+bx", "by", "bz", "0"]


# ---- matrices == torch -----------------------------------------------------------------------
def test_conv1d_matrix_matches_conv1d_and_conv_transpose1d_on_random_cases():
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        k, s = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 4, (1,), generator=g))
        p = int(torch.randint(0, k, (1,), generator=g))
        n = int(torch.randint(max(1, k - 2 * p), 14, (1,), generator=g))
        w, x = torch.randn(k, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
        X = cm.conv1d_matrix(w, n, s, p)
        y = F.conv1d(x[None, None], w[None, None], stride=s, padding=p)[0, 0]
        torch.testing.assert_close(X @ F.pad(x, (p, p)), y)
        a = torch.randn_like(y)
        op = cm.transpose_output_padding(n, k, s, p)
        back = F.conv_transpose1d(a[None, None], w[None, None], stride=s, padding=p, output_padding=op)[0, 0]
        torch.testing.assert_close((X.T @ a)[p:p + n], back)
        torch.testing.assert_close(lab04.conv_transpose1d_reference(a, w, s, p, op), back)


def test_conv2d_matrix_matches_conv2d_conv_transpose2d_and_the_jacobian():
    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        c_out, c_in, k, s = (int(torch.randint(1, 4, (1,), generator=g)) for _ in range(4))
        p = int(torch.randint(0, k, (1,), generator=g))
        h, w = (int(torch.randint(max(1, k - 2 * p), 8, (1,), generator=g)) for _ in range(2))
        weight = torch.randn(c_out, c_in, k, k, generator=g, dtype=torch.float64)
        x = torch.randn(2, c_in, h, w, generator=g, dtype=torch.float64)
        X = cm.conv2d_matrix(weight, (h, w), s, p)
        y = F.conv2d(x, weight, stride=s, padding=p)
        torch.testing.assert_close((x.flatten(1) @ X.T).reshape(y.shape), y)
        a = torch.randn_like(y)
        op = (cm.transpose_output_padding(h, k, s, p), cm.transpose_output_padding(w, k, s, p))
        back = F.conv_transpose2d(a, weight, stride=s, padding=p, output_padding=op)
        torch.testing.assert_close((a.flatten(1) @ X).reshape(back.shape), back)
        torch.testing.assert_close(lab04.conv2d_vjp_reference(a, weight, (h, w), s, p), back)
    jac = torch.autograd.functional.jacobian(
        lambda v: F.conv2d(v.reshape(1, c_in, h, w), weight, stride=s, padding=p).flatten(), x[0].flatten())
    torch.testing.assert_close(jac, X)


def test_zero_insertion_reference_matches_conv_transpose2d():
    g = torch.Generator().manual_seed(2)
    for _ in range(30):
        k_h, k_w, s = (int(torch.randint(1, 5, (1,), generator=g)) for _ in range(3))
        p, op = int(torch.randint(0, min(k_h, k_w), (1,), generator=g)), int(torch.randint(0, s, (1,), generator=g))
        h, w = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(2))
        x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
        weight = torch.randn(3, 2, k_h, k_w, generator=g, dtype=torch.float64)
        if min((h - 1) * s + k_h, (w - 1) * s + k_w) - 2 * p + op < 1:
            continue                                     # padding trims everything: torch refuses too
        expected = F.conv_transpose2d(x, weight, None, s, p, op)
        torch.testing.assert_close(lab04.zero_insertion_reference(x, weight, s, p, op), expected)


def test_columns_of_the_matrix_are_impulse_responses():
    weight = torch.randn(2, 3, 3, 2, dtype=torch.float64)     # non-square kernel
    X = cm.conv2d_matrix(weight, (4, 5), stride=2, padding=1)
    impulses = torch.eye(3 * 4 * 5, dtype=torch.float64).reshape(-1, 3, 4, 5)
    responses = F.conv2d(impulses, weight, stride=2, padding=1).flatten(1)
    torch.testing.assert_close(X, responses.T)


# ---- bad inputs: clear errors ----------------------------------------------------------------
W1 = torch.tensor([1.0, 2.0, 3.0])
W2 = torch.randn(2, 1, 3, 3)


@pytest.mark.parametrize("call,error,message", [
    (lambda: cm.conv1d_matrix(W1, 4, stride=-1), ValueError, "stride must be >= 1"),
    (lambda: cm.conv1d_matrix(W1, 4, stride=0), ValueError, "stride must be >= 1"),
    (lambda: cm.conv1d_matrix(W1, 4, padding=-2), ValueError, "padding must be >= 0"),
    (lambda: cm.conv1d_matrix(W1, 1), ValueError, "larger than the padded input"),
    (lambda: cm.conv1d_matrix(torch.ones(7), 2, padding=2), ValueError, "larger than the padded input"),
    (lambda: cm.conv1d_matrix(W1[None], 4), ValueError, "1-D"),
    (lambda: cm.conv1d_matrix(W1.long(), 4), TypeError, "floating-point"),
    (lambda: cm.conv1d_matrix([1.0, 2.0], 4), TypeError, "torch.Tensor"),
    (lambda: cm.conv1d_matrix(W1, 4.0), TypeError, "n must be an int"),
    (lambda: cm.conv2d_matrix(W2, (2, 2)), ValueError, "larger than the padded input"),
    (lambda: cm.conv2d_matrix(W2, 5), TypeError, "pair"),
    (lambda: cm.conv2d_matrix(W2[0], (5, 5)), ValueError, "4-D"),
    (lambda: lab04.conv_transpose1d_reference(torch.ones(3), torch.ones(3, dtype=torch.float64)), TypeError,
     "same dtype"),
    (lambda: lab04.conv_transpose1d_reference(torch.ones(3), W1, 2, 0, 2), ValueError, "smaller than stride"),
    (lambda: lab04.conv_transpose1d_reference(torch.ones(1, 3), W1), ValueError, "1-D"),
    (lambda: lab04.conv2d_vjp_reference(torch.randn(1, 2, 4, 4), W2, (5, 5)), ValueError, "shape of the convolution"),
    (lambda: lab04.conv2d_vjp_reference(torch.randn(1, 1, 3, 3), W2, (5, 5)), ValueError, "shape of the convolution"),
    (lambda: viz_conv.symbolic_product(torch.tensor([[1.0, 4.0]]), KERNEL, ["a", "b"]), ValueError, "codes must be in"),
    (lambda: viz_conv.symbolic_product(torch.tensor([[1.0, 2.0]]), KERNEL, ["a"]), ValueError, "1 names"),
])
def test_bad_inputs_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- the checks reject plausible mistakes ----------------------------------------------------
def _failed(exercise, fn):
    result = evaluate(exercise, fn)
    assert not result.passed
    return result


def test_check_rejects_off_by_one_padding_in_the_1d_matrix():
    def one_pad_short(weight, n, stride=1, padding=0):
        return cm.conv1d_matrix(weight, n, stride, padding)[:, :-1]      # forgot the padding at the end

    result = _failed("04.conv1d_matrix", one_pad_short)
    assert "case 1 of" in result.message and "wrong shape: expected (4, 6), got (4, 5)" in result.message
    assert "hint:" in result.message


def test_check_rejects_a_1d_matrix_that_ignores_the_stride():
    result = _failed("04.conv1d_matrix", lambda weight, n, stride=1, padding=0: cm.conv1d_matrix(weight, n, 1, padding))
    assert "stride 2" in result.message and "wrong shape: expected (2, 6)" in result.message


def test_check_rejects_a_2d_matrix_with_the_padding_columns_kept_or_channels_swapped():
    def keeps_padding(weight, in_size, stride=1, padding=0):
        return cm.conv2d_matrix(weight, (in_size[0] + 2 * padding, in_size[1] + 2 * padding), stride, 0)

    assert "wrong shape" in _failed("04.conv2d_matrix", keeps_padding).message

    def wrong_column_order(weight, in_size, stride=1, padding=0):   # columns as (y, x, channel)
        m = cm.conv2d_matrix(weight, in_size, stride, padding)
        c_in = weight.shape[1]
        return m.reshape(m.shape[0], c_in, *in_size).permute(0, 2, 3, 1).reshape(m.shape)

    result = _failed("04.conv2d_matrix", wrong_column_order)
    assert "channels" in result.message and "values differ" in result.message


def test_check_rejects_an_uncropped_transposed_product_and_an_unflipped_kernel():
    def no_crop(a, weight, stride=1, padding=0, output_padding=0):
        n = (a.shape[0] - 1) * stride - 2 * padding + weight.shape[0] + output_padding
        return cm.conv1d_matrix(weight, n, stride, padding).T @ a

    assert "wrong shape: expected (4,), got (6,)" in _failed("04.conv_transpose1d", no_crop).message

    def not_flipped(x, weight, stride=1, padding=0, output_padding=0):
        n, c, h, w = x.shape
        k = weight.shape[2]
        spread = x.new_zeros(n, c, (h - 1) * stride + 1, (w - 1) * stride + 1)
        spread[:, :, ::stride, ::stride] = x
        q = k - 1 - padding
        return F.conv2d(F.pad(spread, (q, q + output_padding, q, q + output_padding)), weight.transpose(0, 1))

    result = _failed("04.zero_insertion", not_flipped)
    assert "values differ" in result.message and "flip" in result.message


def test_check_rejects_a_vjp_without_output_padding():
    def transpose_without_output_padding(a, weight, in_size, stride=1, padding=0):   # ignores in_size
        size = [(n - 1) * stride - 2 * padding + k for n, k in zip(a.shape[2:], weight.shape[2:])]
        x = torch.zeros(a.shape[0], weight.shape[1], *size, requires_grad=True)
        return torch.autograd.grad(F.conv2d(x, weight, stride=stride, padding=padding), x, grad_outputs=a)[0]

    result = _failed("04.vjp", transpose_without_output_padding)
    assert "case 2 of 8" in result.message and "wrong shape: expected (1, 1, 4, 4), got (1, 1, 3, 3)" in result.message
