"""Lab 06 (YOLO): the references against independent implementations -- the loss against a plain loop over
Redmon et al.'s eq. 3 (value and gradient), the decoding against torchvision's clip and batched NMS on the
same candidates, the targets against hand-computed ones --, their input checks, and the checks' verdicts."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torchvision
from _student import as_student
from mutants import lab06 as mutants

from course_utils.exercises import lab_exercises
from course_utils.exercises.lab06 import (
    DECODE,
    ENCODE_TARGETS,
    YOLO_LOSS,
    _canonical,
    _decode_verify,
)
from course_utils.grading import CheckFailed, check, evaluate
from course_utils.grading.exercise import Case
from course_utils.ops import yolo

SEEDS = (0, 1, 271828)
T = torch.tensor


def cases(ex, seed):
    return ex.cases(torch.Generator().manual_seed(seed))


def test_lab06_exercises_are_the_ones_the_notebook_checks():
    assert [e.id for e in lab_exercises("06")] == ["06.encode_targets", "06.yolo_loss", "06.decode"]
    assert [e.function for e in lab_exercises("06")] == ["encode_targets", "yolo_loss", "decode"]
    assert YOLO_LOSS.gradient == (0,)


# ---- encode_targets: hand-computed ----------------------------------------------------------
def _cells(target):
    """``{(row, col): [x, y, w, h, conf, class]}`` of the object cells."""
    return {tuple(rc): [round(v, 6) for v in target[rc[0], rc[1], :5].tolist()]
            + [int(target[rc[0], rc[1], 5:].argmax())]
            for rc in (target[..., 4] > 0).nonzero().tolist()}


def test_encode_the_lecture_example():
    target = yolo.encode_targets(T([[150.0, 250.0, 250.0, 350.0]]), T([1]), 7, 3, 448)
    assert target.shape == (7, 7, 8) and target.dtype == torch.float32
    want = torch.zeros(7, 7, 8)
    want[4, 3] = T([0.125, 0.6875, 100 / 448, 100 / 448, 1.0, 0.0, 1.0, 0.0])
    assert torch.equal(target, want)
    assert torch.equal(yolo.encode_targets(T([[150.0, 250.0, 250.0, 350.0]]), T([1]), 7, 3, (448, 448)), target)


def test_encode_the_first_object_keeps_its_cell():
    boxes = T([[10.0, 10.0, 30.0, 20.0], [2.0, 4.0, 40.0, 28.0], [40.0, 40.0, 60.0, 60.0]])
    assert _cells(yolo.encode_targets(boxes, T([0, 2, 1]), 2, 3, 64)) == {
        (0, 0): [0.625, 0.46875, 0.3125, 0.15625, 1.0, 0], (1, 1): [0.5625, 0.5625, 0.3125, 0.3125, 1.0, 1]}
    swapped = yolo.encode_targets(boxes[[1, 0, 2]], T([2, 0, 1]), 2, 3, 64)
    assert _cells(swapped)[(0, 0)] == [0.65625, 0.5, 0.59375, 0.375, 1.0, 2]


def test_encode_borders_and_edges():
    borders = yolo.encode_targets(T([[24.0, 8.0, 40.0, 24.0], [0.0, 40.0, 16.0, 56.0]]), T([1, 0]), 4, 2, (64, 64))
    assert _cells(borders) == {(1, 2): [0.0, 0.0, 0.25, 0.25, 1.0, 1], (3, 0): [0.5, 0.0, 0.25, 0.25, 1.0, 0]}
    edges = yolo.encode_targets(T([[56.0, 8.0, 72.0, 24.0], [56.0, 56.0, 72.0, 72.0], [8.0, 56.0, 24.0, 72.0]]),
                                T([0, 1, 2]), 4, 3, (64, 64))
    assert _cells(edges) == {(1, 3): [1.0, 0.0, 0.25, 0.25, 1.0, 0], (3, 3): [1.0, 1.0, 0.25, 0.25, 1.0, 1],
                             (3, 1): [0.0, 1.0, 0.25, 0.25, 1.0, 2]}
    corner = yolo.encode_targets(T([[-4.0, -4.0, 4.0, 4.0]]), T([0]), 3, 1, (30, 60))
    assert _cells(corner) == {(0, 0): [0.0, 0.0, round(8 / 60, 6), round(8 / 30, 6), 1.0, 0]}


def test_encode_a_non_square_image():
    target = yolo.encode_targets(T([[30.0, 10.0, 90.0, 50.0], [100.0, 10.0, 150.0, 40.0]]), T([1, 0]), 4, 2, (96, 160))
    assert _cells(target) == {(1, 1): [0.5, 0.25, 0.375, round(40 / 96, 6), 1.0, 1],
                              (1, 3): [0.125, round(25 * 4 / 96 - 1, 6), 0.3125, 0.3125, 1.0, 0]}


def test_encode_no_objects_and_one_cell():
    assert torch.equal(yolo.encode_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 3, 4, (48, 64)),
                       torch.zeros(3, 3, 9))
    one = yolo.encode_targets(T([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 5.0, 5.0]]), T([0, 1]), 1, 2, (50, 100))
    assert _cells(one) == {(0, 0): [0.2, 0.6, 0.2, 0.4, 1.0, 0]}


def test_encode_keeps_the_inputs():
    boxes, labels = T([[150.0, 250.0, 250.0, 350.0]]), T([1])
    yolo.encode_targets(boxes, labels, 7, 3, 448)
    assert boxes.tolist() == [[150.0, 250.0, 250.0, 350.0]] and labels.tolist() == [1]


@pytest.mark.parametrize(("args", "error", "words"), [
    ((torch.zeros(1, 5), T([0]), 7, 3, 64), ValueError, "(N, 4)"),
    ((T([[10.0, 10.0, 5.0, 20.0]]), T([0]), 7, 3, 64), ValueError, "x1 <= x2"),
    ((T([[10.0, 10.0, 20.0, 20.0]]), T([3]), 7, 3, 64), ValueError, "pass labels - 1"),
    ((T([[10.0, 10.0, 20.0, 20.0]]), T([-1]), 7, 3, 64), ValueError, "0 .. 2"),
    ((T([[10.0, 10.0, 20.0, 20.0]]), T([0.0]), 7, 3, 64), TypeError, "integer tensor"),
    ((T([[10.0, 10.0, 20.0, 20.0]]), T([0, 1]), 7, 3, 64), ValueError, "one label per box"),
    ((T([[60.0, 10.0, 80.0, 20.0]]), T([0]), 7, 3, 64), ValueError, "inside the 64 x 64 image"),
    ((T([[10.0, -30.0, 20.0, 10.0]]), T([0]), 7, 3, (32, 64)), ValueError, "inside the 32 x 64 image"),
    ((T([[10.0, 10.0, 20.0, 20.0]]), T([0]), 0, 3, 64), ValueError, "grid"),
    ((T([[10.0, 10.0, 20.0, 20.0]]), T([0]), 7, 3, (64,)), TypeError, "image_size"),
])
def test_encode_refuses_bad_inputs_clearly(args, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        yolo.encode_targets(*args)


# ---- yolo_loss: a plain loop over eq. 3 -----------------------------------------------------------
def _root(v):
    """sign(v) * sqrt(|v| + 1e-6), for a tensor or a float."""
    if isinstance(v, torch.Tensor):
        return torch.sign(v) * torch.sqrt(v.abs() + 1e-6)
    return 0.0 if v == 0 else math.copysign(math.sqrt(abs(v) + 1e-6), v)


def _iou_in_cell(p, t, row, col, s):
    """IoU of two cell-relative (x, y, w, h), both placed in cell (row, col), negative sizes as 0."""
    def corners(x, y, w, h):
        cx, cy, w, h = (col + x) / s, (row + y) / s, max(w, 0.0), max(h, 0.0)
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

    a, b = corners(*p), corners(*t)
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def loop_loss(pred, target, lambda_coord=5.0, lambda_noobj=0.5):
    """Redmon et al. 2016, eq. 3, cell by cell and predictor by predictor, divided by the batch size."""
    images, s = pred.shape[:2]
    c = target.shape[-1] - 5
    b = (pred.shape[-1] - c) // 5
    total = pred.new_zeros(())
    for n in range(images):
        for row in range(s):
            for col in range(s):
                t = target[n, row, col].tolist()
                has_object = t[4] > 0
                p = [pred[n, row, col, 5 * k: 5 * k + 5] for k in range(b)]
                ious = [_iou_in_cell(q[:4].tolist(), t[:4], row, col, s) if has_object else 0.0 for q in p]
                best = ious.index(max(ious)) if has_object else -1          # the first of equal IoUs
                for k, q in enumerate(p):
                    if k == best:
                        total = total + lambda_coord * ((q[0] - t[0]) ** 2 + (q[1] - t[1]) ** 2
                                                        + (_root(q[2]) - _root(t[2])) ** 2
                                                        + (_root(q[3]) - _root(t[3])) ** 2)
                        total = total + (q[4] - ious[k]) ** 2
                    else:
                        total = total + lambda_noobj * q[4] ** 2
                if has_object:
                    for k in range(c):
                        total = total + (pred[n, row, col, 5 * b + k] - t[5 + k]) ** 2
    return total / images


def _value_and_grad(fn, pred, target, **kwargs):
    leaf = pred.detach().clone().requires_grad_(True)
    value = fn(leaf, target, **kwargs)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def _random_problem(g, n, s, b, c, negative=False):
    size = 32 * s
    targets = []
    for _ in range(n):
        k = int(torch.randint(0, s * s + 1, (1,), generator=g))
        centres = torch.rand(k, 2, generator=g, dtype=torch.float64) * size
        half = 1 + torch.rand(k, 2, generator=g, dtype=torch.float64) * size / 4
        boxes = torch.cat([centres - half, centres + half], 1).float()
        targets.append(yolo.encode_targets(boxes, torch.randint(0, c, (k,), generator=g), s, c, size))
    target = torch.stack(targets).double()
    pred = torch.rand(n, s, s, 5 * b + c, generator=g, dtype=torch.float64)
    boxes = pred[..., : 5 * b].view(n, s, s, b, 5)
    near = target[..., None, :4] + 0.15 * torch.randn(n, s, s, b, 4, generator=g, dtype=torch.float64)
    boxes[..., :4] = torch.where((target[..., 4] > 0)[..., None, None], near, boxes[..., :4])
    if negative:
        boxes[..., 2:4] -= 0.3
    return pred, target


@pytest.mark.parametrize("b", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_is_the_loop_over_eq3(seed, b):
    g = torch.Generator().manual_seed(seed * 10 + b)
    pred, target = _random_problem(g, 2, 4, b, 3, negative=seed == 2)
    kwargs = {} if seed else {"lambda_coord": 2.0, "lambda_noobj": 0.25}
    ours, our_grad = _value_and_grad(yolo.yolo_loss, pred, target, **kwargs)
    theirs, their_grad = _value_and_grad(loop_loss, pred, target, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(our_grad, their_grad, rtol=1e-12, atol=1e-12)
    assert (target[..., 4] > 0).any() and our_grad.abs().sum() > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_loss_cases_are_the_loop_over_eq3(seed):
    for case in cases(YOLO_LOSS, seed):
        ours, our_grad = _value_and_grad(yolo.yolo_loss, *case.args, **case.kwargs)
        theirs, their_grad = _value_and_grad(loop_loss, *case.args, **case.kwargs)
        assert ours.dtype == torch.float32 and ours.ndim == 0, case.note
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5, msg=case.note)
        torch.testing.assert_close(our_grad, their_grad, rtol=1e-5, atol=1e-5, msg=case.note)


def test_loss_terms_sum_to_the_loss_and_the_iou_target_has_no_gradient():
    pred, target = _random_problem(torch.Generator().manual_seed(5), 2, 3, 2, 2)
    pred.requires_grad_(True)
    terms = yolo.yolo_loss_terms(pred, target)
    assert set(terms) == {"coord", "object", "no_object", "class"}
    torch.testing.assert_close(sum(terms.values()), yolo.yolo_loss(pred, target))
    mask, iou = yolo.responsible(pred, target)
    assert not iou.requires_grad and mask.dtype == torch.bool
    assert torch.equal(mask.sum(-1), (target[..., 4] > 0).long())   # one responsible predictor per object cell
    empty = torch.zeros_like(target)
    want = 0.5 * (pred.detach()[..., 4::5][..., :2] ** 2).sum().item() / 2
    assert yolo.yolo_loss(pred, empty).item() == pytest.approx(want)


def test_safe_sqrt():
    x = T([-4.0, 0.0, 1e-8, 4.0], requires_grad=True)
    y = yolo.safe_sqrt(x)
    assert torch.allclose(y, T([-math.sqrt(4 + 1e-6), 0.0, math.sqrt(1e-8 + 1e-6), math.sqrt(4 + 1e-6)]))
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(("pred", "target", "error", "words"), [
    (torch.zeros(7, 7, 30), torch.zeros(1, 7, 7, 25), ValueError, "4-D"),
    (torch.zeros(1, 7, 7, 30), torch.zeros(1, 6, 6, 25), ValueError, "same N and S"),
    (torch.zeros(2, 7, 7, 30), torch.zeros(1, 7, 7, 25), ValueError, "same N and S"),
    (torch.zeros(1, 7, 6, 30), torch.zeros(1, 7, 6, 25), ValueError, "N x S x S"),
    (torch.zeros(1, 7, 7, 29), torch.zeros(1, 7, 7, 25), ValueError, "5B \\+ C"),
    (torch.zeros(1, 7, 7, 30), torch.zeros(1, 7, 7, 5), ValueError, "C >= 1"),
    (torch.zeros(1, 7, 7, 30, dtype=torch.int64), torch.zeros(1, 7, 7, 25), TypeError, "floating-point"),
])
def test_loss_refuses_bad_shapes_clearly(pred, target, error, words):
    with pytest.raises(error, match=words):
        yolo.yolo_loss(pred, target)


def test_loss_refuses_bad_weights():
    with pytest.raises(ValueError, match="lambda_noobj must be >= 0"):
        yolo.yolo_loss(torch.zeros(1, 2, 2, 12), torch.zeros(1, 2, 2, 7), lambda_noobj=-1.0)


# ---- decode: torchvision's clip and batched NMS on the same candidates --------------------------------------
def torchvision_decode(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
    """Every (cell, predictor, class) candidate written out one by one, then torchvision's clip and NMS."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    s, c = pred.shape[0], num_classes
    b = (pred.shape[-1] - c) // 5
    boxes, scores, labels = [], [], []
    for row in range(s):
        for col in range(s):
            for k in range(b):
                x, y, bw, bh, _ = pred[row, col, 5 * k: 5 * k + 5].tolist()
                cx, cy, bw, bh = (col + x) * w / s, (row + y) * h / s, max(bw, 0.0) * w, max(bh, 0.0) * h
                for label in range(c):
                    score = pred[row, col, 5 * k + 4] * pred[row, col, 5 * b + label]     # float32, as the network's
                    if score >= score_threshold:
                        boxes.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
                        scores.append(score)
                        labels.append(label)
    boxes = torchvision.ops.clip_boxes_to_image(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), (h, w))
    scores = torch.stack(scores) if scores else torch.zeros(0)
    labels = torch.tensor(labels, dtype=torch.int64)
    keep = torchvision.ops.batched_nms(boxes, scores, labels, iou_threshold)
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


def _assert_same_detections(ours, theirs, image_size, note=""):
    size = max(image_size) if isinstance(image_size, tuple) else image_size
    assert ours["boxes"].dtype == torch.float32 and ours["scores"].dtype == torch.float32, note
    assert ours["labels"].dtype == torch.int64 and ours["boxes"].shape == (len(ours["scores"]), 4), note
    assert len(ours["scores"]) == len(theirs["scores"]), note
    assert (ours["scores"][1:] <= ours["scores"][:-1]).all(), note
    a, b = _canonical(**ours), _canonical(**theirs)
    assert torch.equal(ours["labels"][a], theirs["labels"][b]), note
    assert torch.equal(ours["scores"][a], theirs["scores"][b]), note
    torch.testing.assert_close(ours["boxes"][a], theirs["boxes"][b], rtol=1e-5, atol=1e-5 * size, msg=note)


@pytest.mark.parametrize("seed", SEEDS)
def test_decode_cases_are_torchvisions(seed):
    for case in cases(DECODE, seed):
        _assert_same_detections(yolo.decode(*case.args, **case.kwargs), torchvision_decode(*case.args, **case.kwargs),
                                case.args[2], case.note)


@pytest.mark.parametrize("seed", range(4))
def test_decode_random_dense_predictions_are_torchvisions(seed):
    g = torch.Generator().manual_seed(seed)
    s, b, c = 5, 1 + seed % 3, 1 + seed
    pred = torch.rand(s, s, 5 * b + c, generator=g)
    image_size = (80, 120) if seed % 2 else 100
    ours = yolo.decode(pred, c, image_size, 0.05, 0.4)
    assert len(ours["scores"]) > 5
    _assert_same_detections(ours, torchvision_decode(pred, c, image_size, 0.05, 0.4), image_size)


def test_decode_nothing_above_the_threshold():
    out = yolo.decode(torch.zeros(3, 3, 12), 2, 64)
    assert out["boxes"].shape == (0, 4) and out["boxes"].dtype == torch.float32
    assert out["scores"].shape == (0,) and out["scores"].dtype == torch.float32
    assert out["labels"].shape == (0,) and out["labels"].dtype == torch.int64


def test_decode_one_box_by_hand():
    pred = torch.zeros(2, 2, 7)
    pred[1, 0] = T([0.5, 0.25, 0.5, 0.25, 0.8, 0.25, 0.75])    # cell row 1, col 0 of a 64 x 128 (H x W) image
    out = yolo.decode(pred, 2, (64, 128))
    assert out["labels"].tolist() == [1, 0]
    assert out["scores"].tolist() == pytest.approx([0.6, 0.2])
    # centre ((0 + 0.5) * 128 / 2, (1 + 0.25) * 64 / 2) = (32, 40), size (64, 16)
    assert out["boxes"].tolist() == [[0.0, 32.0, 64.0, 48.0]] * 2


@pytest.mark.parametrize(("args", "error", "words"), [
    ((torch.zeros(1, 7, 7, 30), 20, 448), ValueError, "3-D"),
    ((torch.zeros(7, 7, 31), 20, 448), ValueError, "S x S x \\(5B \\+ C\\) with C = 20"),
    ((torch.zeros(7, 6, 30), 20, 448), ValueError, "S x S"),
    ((torch.zeros(7, 7, 30), 0, 448), ValueError, "num_classes"),
    ((torch.zeros(7, 7, 30, dtype=torch.int64), 20, 448), TypeError, "floating-point"),
    ((torch.zeros(7, 7, 30), 20, (448, 0)), ValueError, "image_size"),
])
def test_decode_refuses_bad_inputs_clearly(args, error, words):
    with pytest.raises(error, match=words):
        yolo.decode(*args)


# ---- the checks ---------------------------------------------------------------------------------------
def test_decode_check_ignores_the_order_among_equal_scores_only():
    pred = torch.zeros(2, 2, 6)
    pred[0, 0] = T([0.5, 0.5, 0.4, 0.4, 0.5, 1.0])
    pred[1, 1] = T([0.5, 0.5, 0.4, 0.4, 0.5, 1.0])
    pred[0, 1] = T([0.5, 0.5, 0.4, 0.4, 0.9, 1.0])
    case = Case((pred, 1, 64))
    expected = yolo.decode(pred, 1, 64)
    assert len(expected["scores"]) == 3
    order = T([0, 2, 1])                               # the two 0.5s swapped
    swapped = {k: v[order] for k, v in expected.items()}
    assert _decode_verify(case, swapped, expected) is None
    unsorted = {k: v[T([1, 0, 2])] for k, v in expected.items()}
    assert "decreasing score" in _decode_verify(case, unsorted, expected)
    moved = dict(expected, boxes=expected["boxes"] + T([0.0, 0.0, 0.01, 0.0]))
    assert "boxes" in _decode_verify(case, moved, expected)
    assert "wrong dtype" in _decode_verify(case, dict(expected, labels=expected["labels"].int()), expected)
    assert "expected 3 detections, got 2" in _decode_verify(case, {k: v[:2] for k, v in expected.items()}, expected)
    assert "keys" in _decode_verify(case, {"boxes": expected["boxes"]}, expected)


def test_the_loss_check_compares_the_gradient():
    result = evaluate("06.yolo_loss", mutants.loss_iou_not_detached)
    assert result.status == "failed" and "gradient is not the reference's" in result.message
    result = evaluate("06.yolo_loss", mutants.loss_no_gradient)
    assert result.status == "failed" and "carries no gradient" in result.message


def test_an_index_error_is_a_failure_of_the_student_not_of_the_grader():
    result = evaluate("06.encode_targets", mutants.encode_no_clamp)
    assert result.status == "error" and "IndexError" in result.message and "right edge" in result.message


def test_nms_is_not_off_limits_in_decode():
    def decode(pred, num_classes, image_size, score_threshold=0.2, iou_threshold=0.5):
        from course_utils.ops.nms import batched_nms

        out = torchvision_decode(pred, num_classes, image_size, score_threshold, iou_threshold)
        batched_nms(out["boxes"], out["scores"], out["labels"], iou_threshold)
        return out

    decode.__module__ = "__main__"
    assert evaluate("06.decode", decode).passed


@pytest.mark.parametrize("exercise", lab_exercises("06"), ids=lambda ex: ex.id)
def test_the_reference_passes_its_check_in_strict_mode_quickly(exercise, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_STRICT", "1")
    student = as_student(exercise.reference, exercise.function)
    check(exercise.id, student)                          # imports and warm-up; raises CheckFailed if it fails
    assert "PASSED" in capsys.readouterr().out
    tick = time.process_time()   # CPU seconds (one torch thread): what the check costs, whatever the load
    for seed in (1, 271828):
        check(exercise.id, student, seed)
    assert time.process_time() - tick < 2.0
    with pytest.raises(CheckFailed):
        check(exercise.id, lambda *args, **kwargs: None)


def test_the_cases_are_well_formed():
    assert len(cases(ENCODE_TARGETS, 0)) == 10 and len(cases(YOLO_LOSS, 0)) == 13 and len(cases(DECODE, 0)) == 15
    for ex in lab_exercises("06"):
        for seed in SEEDS:
            assert all(c.note for c in ex.cases(torch.Generator().manual_seed(seed)))
