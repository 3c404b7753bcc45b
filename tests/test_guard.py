"""The off-limits guard (course_utils.grading.runner): the compiled kernels come with their library wrapper,
the course's own code for an answer comes for free, and what a lab allows stays usable."""

from __future__ import annotations

import torch
import torchvision

from course_utils.grading import Case, Exercise, evaluate
from course_utils.grading.runner import call_student, guard_rules
from course_utils.ops import nms as course_nms
from course_utils.ops import yolo
from course_utils.structures import boxes as course_boxes

BOXES = torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 0.0, 5.0, 4.0], [8.0, 8.0, 9.0, 9.0]])
SCORES = torch.tensor([0.9, 0.8, 0.7])


def exercise(reference, off_limits=(), allowed=()):
    return Exercise("99.probe", title="a test exercise", reference=reference, cases=lambda g: [Case((BOXES, BOXES))],
    function="fn",
                    off_limits=off_limits, allowed=allowed)


def refused(ex, fn, *args):
    try:
        call_student(ex, fn, Case(args))
    except BaseException as exc:  # noqa: BLE001 - OffLimits is a BaseException on purpose
        return type(exc).__name__ == "OffLimits" and str(exc)
    return False


def test_a_library_function_brings_its_compiled_kernels_every_overload_and_backward():
    rules = guard_rules(exercise(lambda a, b: a, off_limits=("torchvision.ops.roi_align",)))
    names = {why.split("`")[1] for _, why in rules.builtins.values()}
    assert {"torch.ops.torchvision.roi_align", "torch.ops.torchvision._roi_align_backward"} <= names
    packet = torch.ops.torchvision.roi_align
    assert id(packet._op) in rules.builtins and id(packet.default._op) in rules.builtins
    aten = guard_rules(exercise(lambda a, b: a, off_limits=("torch._C._nn.upsample_nearest2d",)))
    assert all(id(getattr(torch.ops.aten.upsample_nearest2d, o)._op) in aten.builtins
               for o in torch.ops.aten.upsample_nearest2d.overloads())


def test_every_way_of_calling_the_compiled_nms_is_refused():
    ex = exercise(lambda b, s, t: b, off_limits=("torchvision.ops.nms",))
    calls = [lambda b, s, t: torch.ops.torchvision.nms(b, s, t),
             lambda b, s, t: torch.ops.torchvision.nms.default(b, s, t),
             lambda b, s, t: torch.ops.torchvision.nms(b, s, t),
             lambda b, s, t: torch.ops.torchvision.nms.default._op(b, s, t),
             lambda b, s, t: torchvision.ops.nms(b, s, t)]
    for call in calls:
        assert "is off-limits inside it" in (refused(ex, call, BOXES, SCORES, 0.5) or "")
    assert not refused(ex, lambda b, s, t: b.sum(), BOXES, SCORES, 0.5)   # everything else runs


def test_a_new_exercise_gets_the_course_code_for_free():
    """No declaration: the reference's module (public and private) and what the reference calls."""
    ex = exercise(yolo.yolo_loss)
    rules = guard_rules(ex)
    for fn in (yolo.yolo_loss, yolo._loss_terms, yolo._responsible, yolo.encode_targets, course_boxes.paired_box_iou):
        assert id(fn.__code__) in rules.codes, fn.__qualname__
    assert "the course's own code for this answer" in rules.codes[id(yolo._loss_terms.__code__)]
    assert "the course's reference solution" in rules.codes[id(yolo.yolo_loss.__code__)]
    assert id(course_boxes.box_iou.__code__) not in rules.codes            # not reached by the reference
    from course_utils import validation
    assert id(validation.tensor.__code__) not in rules.codes              # input checks stay usable


def test_what_a_lab_allows_runs_and_so_does_what_it_calls():
    ex = exercise(course_nms.batched_nms, allowed=("course_utils.ops.nms.nms",))
    rules = guard_rules(ex)
    assert id(course_nms.nms.__code__) not in rules.codes and id(course_nms._check.__code__) in rules.codes

    def student(b, s, t):
        return course_nms.nms(b, s, t)                                      # calls the forbidden _check inside

    assert not refused(ex, student, BOXES, SCORES, 0.5)
    assert "course_utils.ops.nms._check" in refused(ex, lambda b, s, t: course_nms._check(b, s, t), BOXES, SCORES, 0.5)


def test_the_reference_itself_runs_unguarded():
    ex = exercise(course_nms.batched_nms)
    out = call_student(ex, course_nms.batched_nms, Case((BOXES, SCORES, torch.tensor([0, 0, 1]), 0.5)), guard=False)
    assert out.tolist() == [0, 2]


def test_the_lab_exercises_keep_the_student_s_earlier_functions_usable():
    """After fallback, a student's box_iou (05.nms), nms (05.batched_nms), kmeans parts (01.kmeans) may be the
    course's: the exercises that reuse them pass with them."""
    def nms(boxes, scores, iou_threshold):
        order = torch.sort(scores, descending=True, stable=True).indices
        over = course_boxes.box_iou(boxes[order], boxes[order]).double() > iou_threshold
        keep, gone = [], torch.zeros(len(order), dtype=torch.bool)
        for i in range(len(order)):
            if not gone[i]:
                keep.append(i)
                gone |= over[i]
        return order[torch.tensor(keep, dtype=torch.int64)]

    def batched_nms(boxes, scores, idxs, iou_threshold):
        if len(boxes) == 0:
            return torch.zeros(0, dtype=torch.int64)
        return course_nms.nms(boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None], scores, iou_threshold)

    assert evaluate("05.nms", nms).passed
    assert evaluate("05.batched_nms", batched_nms).passed
