"""Lab 05's exercises: every case's expected answer is torchvision's / pycocotools' (through torchmetrics),
and every check runs in under a second."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torchvision
from _pycocotools import pycocotools_map
from _student import as_student
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator

from course_utils.evaluation.detection import box_map, coco_map_torchmetrics
from course_utils.exercises import lab_exercises
from course_utils.exercises.lab05 import (
    ANCHORS,
    AVERAGE_PRECISION,
    BATCHED_NMS,
    BOX_IOU,
    DECODE,
    ENCODE,
    MATCH,
    NMS,
    ROI_ALIGN,
    ROI_POOL,
)
from course_utils.grading import evaluate

SEEDS = (0, 1, 271828)


def cases(ex, seed):
    return ex.cases(torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_box_iou_is_torchvisions(seed):
    for case in cases(BOX_IOU, seed):
        ours, theirs = BOX_IOU.reference(*case.args), torchvision.ops.box_iou(*case.args)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, case.note
        assert torch.equal(ours, torch.nan_to_num(theirs, nan=0.0)), case.note   # 0 / 0: NaN there, 0 here


@pytest.mark.parametrize("seed", SEEDS)
def test_roi_ops_are_torchvisions(seed):
    for case in cases(ROI_POOL, seed):
        assert torch.equal(ROI_POOL.reference(*case.args, **case.kwargs),
                           torchvision.ops.roi_pool(*case.args, **case.kwargs)), case.note
    for case in cases(ROI_ALIGN, seed):
        torch.testing.assert_close(ROI_ALIGN.reference(*case.args, **case.kwargs),
                                   torchvision.ops.roi_align(*case.args, **case.kwargs), rtol=1e-5, atol=1e-5,
                                   msg=case.note)


@pytest.mark.parametrize("seed", SEEDS)
def test_anchors_are_anchor_generators(seed):
    for case in cases(ANCHORS, seed):
        (gh, gw), (sy, sx), sizes, ratios = case.args
        images = torchvision.models.detection.image_list.ImageList(torch.zeros(1, 3, gh * sy, gw * sx),
                                                                   [(gh * sy, gw * sx)])
        theirs = AnchorGenerator((tuple(sizes),), (tuple(ratios),))(images, [torch.zeros(1, 1, gh, gw)])[0]
        assert torch.equal(ANCHORS.reference(*case.args), theirs), case.note


@pytest.mark.parametrize("seed", SEEDS)
def test_box_coding_is_box_coders(seed):
    for case in cases(ENCODE, seed):
        weights = case.args[2] if len(case.args) > 2 else (1.0, 1.0, 1.0, 1.0)
        torch.testing.assert_close(ENCODE.reference(*case.args), BoxCoder(weights).encode_single(*case.args[:2]),
                                   msg=case.note)
    for case in cases(DECODE, seed):
        weights = case.args[2] if len(case.args) > 2 else (1.0, 1.0, 1.0, 1.0)
        codes, refs = case.args[:2]
        theirs = BoxCoder(weights, math.log(1000 / 16)).decode_single(codes, refs) if len(codes) else codes.clone()
        torch.testing.assert_close(DECODE.reference(*case.args), theirs.reshape(codes.shape), msg=case.note)


@pytest.mark.parametrize("seed", SEEDS)
def test_match_is_matchers(seed):
    for case in cases(MATCH, seed):
        quality = case.args[0]
        if 0 in quality.shape:
            continue   # torchvision refuses empty inputs; the course's rule is documented in ops.matcher
        assert torch.equal(MATCH.reference(*case.args), Matcher(*case.args[1:])(quality)), case.note


@pytest.mark.parametrize("seed", SEEDS)
def test_nms_is_torchvisions(seed):
    for case in cases(NMS, seed):
        assert torch.equal(NMS.reference(*case.args), torchvision.ops.nms(*case.args)), case.note
    for case in cases(BATCHED_NMS, seed):
        assert torch.equal(BATCHED_NMS.reference(*case.args), torchvision.ops.batched_nms(*case.args)), case.note


@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_is_pycocotools_and_on_float32_grids_torchmetrics(seed):
    for case in cases(AVERAGE_PRECISION, seed):
        if len(case.args) > 2:
            continue   # torchmetrics reports map at its largest max_dets: see test_max_dets_matches_torchmetrics
        ours, coco = AVERAGE_PRECISION.reference(*case.args), pycocotools_map(*case.args)
        assert ours == pytest.approx(coco, abs=1e-9), case.note
        ours, theirs = coco_map_torchmetrics(*case.args), box_map(*case.args)
        assert ours["map"] == pytest.approx(theirs["map"], abs=1e-6), case.note
        assert ours["map_50"] == pytest.approx(theirs["map_50"], abs=1e-6), case.note


def test_max_dets_matches_torchmetrics():
    from torchmetrics.detection import MeanAveragePrecision

    case = next(c for c in cases(AVERAGE_PRECISION, 0) if len(c.args) > 2)
    preds, targets, max_dets = case.args
    # torchmetrics reads map_50 at its largest max_detection_thresholds (and map at 100 only)
    metric = MeanAveragePrecision(box_format="xyxy", max_detection_thresholds=[1, 1, max_dets])
    metric.update(preds, targets)
    theirs = float(metric.compute()["map_50"])
    assert coco_map_torchmetrics(*case.args)["map_50"] == pytest.approx(theirs, abs=1e-6)
    assert coco_map_torchmetrics(preds, targets)["map_50"] != pytest.approx(theirs, abs=1e-3)   # the cap matters


@pytest.mark.parametrize("exercise", lab_exercises("05"), ids=lambda ex: ex.id)
def test_every_check_takes_under_a_second(exercise):
    student = as_student(exercise.reference, exercise.function)
    evaluate(exercise.id, student)            # imports and warm-up
    tick = time.process_time()   # CPU seconds (one torch thread): what the check costs, whatever the load
    result = evaluate(exercise.id, student, 271828)
    assert result.passed, result.message
    assert time.process_time() - tick < 1.0
