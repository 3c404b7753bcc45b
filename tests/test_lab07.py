"""Lab 07 (Mask R-CNN): the references against torchvision's ``roi_heads`` functions and pycocotools' mask
IoU (on every case and on extra random inputs), mask AP from mask IoUs against torchmetrics' segm mAP,
the references' input checks, the checks' verdicts (RoIAlign allowed in mask targets, the paste check's
rounding margin), two correct-but-different implementations per exercise (``tests/probes/lab07.py``, run by
``tests/test_probes.py``),
and every check under a second."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch
import torchvision
from _student import as_student
from probes import lab07 as probes
from pycocotools import mask as mask_util

from course_utils.evaluation.detection import coco_map_from_ious
from course_utils.exercises import lab_exercises
from course_utils.exercises.lab07 import (
    KEYPOINT_TARGETS,
    MASK_IOU,
    MASK_LOSS,
    MASK_TARGETS,
    PASTE_MARGIN,
    PASTE_MASKS,
    _blobs,
    _jitter,
    _paste_verify,
    _tight_boxes,
)
from course_utils.grading import evaluate
from course_utils.grading.exercise import Case
from course_utils.ops import keypoints, masks
from course_utils.ops import torchvision_heads as tv

SEEDS = (0, 1, 271828)
T = torch.tensor


def cases(ex, seed):
    return ex.cases(torch.Generator().manual_seed(seed))


def test_lab07_exercises_are_the_ones_the_model_uses():
    assert [e.id for e in lab_exercises("07")] == ["07.mask_targets", "07.mask_loss", "07.paste_masks",
                                                  "07.keypoint_targets", "07.mask_iou"]
    assert [e.signature for e in lab_exercises("07")] == [
        "mask_targets(gt_masks, boxes, matched_idxs, M)", "mask_loss(mask_logits, mask_targets, labels)",
        "paste_masks(masks, boxes, image_size, threshold=...)", "keypoint_targets(keypoints, rois, heatmap_size)",
        "mask_iou(masks1, masks2)"]
    assert MASK_LOSS.gradient == (0,)


# ---- the references are torchvision's / pycocotools' -----------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_mask_targets_are_project_masks_on_boxes(seed):
    for case in cases(MASK_TARGETS, seed):
        ours, theirs = masks.mask_targets(*case.args), tv.mask_targets(*case.args)
        assert ours.dtype == theirs.dtype == torch.float32 and torch.equal(ours, theirs), case.note


def _scene(g, images=2):
    """Per image: instance masks, their labels, positive proposals around them and the matched indices."""
    out = []
    for _ in range(images):
        n, h, w = int(torch.randint(1, 4, (1,), generator=g)), 40, 48
        gt = _blobs(g, n, h, w)
        labels = torch.randint(1, 4, (n,), generator=g)
        idx = torch.randint(0, n, (int(torch.randint(0, 6, (1,), generator=g)),), generator=g)
        out.append((gt, labels, _jitter(g, _tight_boxes(gt)[idx], 0.3), idx))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_mask_targets_and_loss_are_maskrcnn_loss_value_and_gradient(seed):
    g = torch.Generator().manual_seed(seed)
    scene = _scene(g)
    k = sum(len(p) for _, _, p, _ in scene)
    logits = (torch.randn(k, 4, 14, 14, generator=g) * 2).requires_grad_(True)
    theirs = tv.maskrcnn_loss(logits, [p for _, _, p, _ in scene], [m for m, _, _, _ in scene],
                              [lab for _, lab, _, _ in scene], [i for _, _, _, i in scene])
    targets = torch.cat([masks.mask_targets(m, p, i, 14) for m, _, p, i in scene])
    ours = masks.mask_loss(logits, targets, torch.cat([lab[i] for _, lab, _, i in scene]))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    (g_ours,), (g_theirs,) = torch.autograd.grad(ours, logits), torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(g_ours, g_theirs, rtol=0, atol=0)


def test_no_roi_gives_a_zero_loss_with_a_gradient_as_maskrcnn_loss():
    logits = torch.randn(0, 3, 7, 7, requires_grad=True)
    ours = masks.mask_loss(logits, torch.zeros(0, 7, 7), torch.zeros(0, dtype=torch.int64))
    theirs = tv.maskrcnn_loss(logits, [torch.zeros(0, 4)], [torch.zeros(2, 9, 9)], [T([1, 2])],
                              [torch.zeros(0, dtype=torch.int64)])
    assert ours.item() == theirs.item() == 0.0 and ours.requires_grad
    assert torch.autograd.grad(ours, logits)[0].shape == logits.shape


@pytest.mark.parametrize("seed", SEEDS)
def test_paste_masks_is_paste_masks_in_image(seed):
    for case in cases(PASTE_MASKS, seed):
        m, b, size = case.args[:3]
        threshold = case.kwargs.get("threshold", case.args[3] if len(case.args) > 3 else 0.5)
        size = (size, size) if isinstance(size, int) else size
        ours, theirs = masks.paste_masks(*case.args, **case.kwargs), tv.paste_probabilities(m, b, size) > threshold
        assert ours.dtype == torch.bool and torch.equal(ours, theirs), case.note


@pytest.mark.parametrize("seed", range(6))
def test_paste_masks_random_boxes_anywhere_on_the_image(seed):
    """Boxes that overlap the image (torchvision's slicing fails on boxes entirely outside), any size."""
    g = torch.Generator().manual_seed(seed)
    h, w, m = 30, 41, 7
    xy = torch.rand(60, 2, generator=g) * 50 - 8
    boxes = torch.cat([xy, xy + torch.rand(60, 2, generator=g) * 20], 1)
    grown = tv.grown_boxes(boxes, m).to(torch.int64)
    boxes = boxes[(grown[:, 2] >= 0) & (grown[:, 3] >= 0) & (grown[:, 0] < w) & (grown[:, 1] < h)]
    probs = torch.rand(len(boxes), m, m, generator=g)
    for threshold in (0.5, 0.2):
        assert torch.equal(masks.paste_masks(probs, boxes, (h, w), threshold),
                           tv.paste_probabilities(probs, boxes, (h, w)) > threshold)


def test_paste_a_box_entirely_outside_pastes_nothing():
    out = masks.paste_masks(torch.ones(2, 4, 4), T([[-20.0, -20.0, -10.0, -10.0], [30.0, 2.0, 40.0, 6.0]]), (8, 12))
    assert out.shape == (2, 8, 12) and not out.any()


@pytest.mark.parametrize("seed", SEEDS)
def test_keypoint_targets_are_keypoints_to_heatmap(seed):
    for case in cases(KEYPOINT_TARGETS, seed):
        ours, theirs = keypoints.keypoint_targets(*case.args), tv.keypoint_targets(*case.args)
        for a, b in zip(ours, theirs):
            assert a.dtype == b.dtype == torch.int64 and torch.equal(a, b), case.note


@pytest.mark.parametrize("seed", SEEDS)
def test_the_random_keypoint_cases_have_points_on_the_edge_outside_and_invisible(seed):
    """The random cases exercise the rules the mutants get wrong, not only the fixed ones do."""
    seen = {"on x2 or y2": 0, "outside": 0, "invisible": 0, "valid": 0}
    for case in cases(KEYPOINT_TARGETS, seed)[-3:]:
        kp, rois, _ = case.args
        _, valid = keypoints.keypoint_targets(*case.args)
        seen["on x2 or y2"] += int(((kp[..., 0] == rois[:, None, 2]) | (kp[..., 1] == rois[:, None, 3])).sum())
        seen["outside"] += int(((valid == 0) & (kp[..., 2] > 0)).sum())
        seen["invisible"] += int((kp[..., 2] == 0).sum())
        seen["valid"] += int(valid.sum())
    assert all(seen.values()), seen


def _pycocotools_iou(a, b):
    def rle(m):
        return mask_util.encode(np.asfortranarray(m.to(torch.uint8).permute(1, 2, 0).numpy()))

    if len(a) == 0 or len(b) == 0:
        return torch.zeros(len(a), len(b), dtype=torch.float64)
    return torch.as_tensor(np.asarray(mask_util.iou(rle(a), rle(b), [0] * len(b)))).reshape(len(a), len(b))


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_iou_is_pycocotools(seed):
    for case in cases(MASK_IOU, seed):
        ours, theirs = masks.mask_iou(*case.args), _pycocotools_iou(*case.args)
        assert ours.dtype == torch.float32 and torch.equal(ours, theirs.float()), case.note


def test_mask_iou_of_empty_masks_is_zero_as_in_pycocotools():
    empty = torch.zeros(2, 5, 5, dtype=torch.bool)
    assert torch.equal(masks.mask_iou(empty, empty), torch.zeros(2, 2))
    assert torch.equal(_pycocotools_iou(empty, empty), torch.zeros(2, 2, dtype=torch.float64))


# ---- mask AP from mask IoUs is torchmetrics' segm mAP --------------------------------------------
def _segm_case(seed):
    """Images of instance masks, detections that are jittered copies (some missed), false positives of any class
    (one without ground truth), tied scores, an image without objects."""
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for image in range(4):
        n = 0 if image == 3 else int(torch.randint(1, 4, (1,), generator=g))
        gt = _blobs(g, n, 32, 40).bool()
        labels = torch.randint(1, 3, (n,), generator=g)
        found = torch.rand(n, generator=g) < 0.8
        shifted = [torch.roll(m, (int(torch.randint(-2, 3, (1,), generator=g)),
                                  int(torch.randint(-2, 3, (1,), generator=g))),
                              (0, 1)) for m in gt[found]]
        extra = _blobs(g, int(torch.randint(0, 3, (1,), generator=g)), 32, 40).bool()
        dt = torch.stack(shifted + list(extra)) if shifted or len(extra) else torch.zeros(0, 32, 40, dtype=torch.bool)
        dt_labels = torch.cat([labels[found], torch.randint(1, 4, (len(extra),), generator=g)])
        scores = (torch.rand(len(dt), generator=g) * 4).round() / 4
        preds.append({"masks": dt, "scores": scores, "labels": dt_labels})
        targets.append({"masks": gt, "labels": labels})
    return preds, targets


def _torchmetrics_map(preds, targets, iou_type):
    from torchmetrics.detection import MeanAveragePrecision

    def with_boxes(d):
        return {**d, "boxes": torchvision.ops.masks_to_boxes(d["masks"]) if len(d["masks"]) else torch.zeros(0, 4)}

    metric = MeanAveragePrecision(iou_type=iou_type, backend="pycocotools")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric.update([with_boxes(p) for p in preds], [with_boxes(t) for t in targets])
        out = metric.compute()
    prefix = "segm_" if isinstance(iou_type, tuple) else ""
    return {key: float(out[prefix + key]) for key in ("map", "map_50", "map_75")}


@pytest.mark.parametrize("seed", range(4))
def test_mask_ap_from_mask_ious_is_torchmetrics_segm(seed):
    """As the lab computes it: box and mask AP in one torchmetrics metric, iou_type=("bbox", "segm")."""
    preds, targets = _segm_case(seed)
    theirs = _torchmetrics_map(preds, targets, ("bbox", "segm"))
    for ious in ([masks.mask_iou(p["masks"], t["masks"]) for p, t in zip(preds, targets)],
                 [_pycocotools_iou(p["masks"], t["masks"]) for p, t in zip(preds, targets)]):
        ours = coco_map_from_ious(preds, targets, ious)
        for key in ("map", "map_50", "map_75"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key


def test_torchmetrics_segm_alone_drops_the_images_without_ground_truth():
    """torchmetrics 1.9's iou_type="segm" (without "bbox") leaves images without ground-truth masks out of its
    COCO dataset (helpers._get_coco_format: ``if len(image_masks) == 0 and boxes is None: continue``), so their
    false positives cost nothing; pycocotools counts them, and so do the course's AP and torchmetrics with
    iou_type=("bbox", "segm"). If this test fails, torchmetrics changed: the lab may then use "segm" alone."""
    preds, targets = _segm_case(2)
    assert len(targets[3]["masks"]) == 0 and len(preds[3]["masks"]) > 0
    ours = coco_map_from_ious(preds, targets, [masks.mask_iou(p["masks"], t["masks"]) for p, t in zip(preds, targets)])
    assert _torchmetrics_map(preds, targets, ("bbox", "segm"))["map"] == pytest.approx(ours["map"], abs=1e-6)
    assert _torchmetrics_map(preds, targets, "segm")["map"] > ours["map"] + 0.005
    without = coco_map_from_ious(preds[:3], targets[:3], [masks.mask_iou(p["masks"], t["masks"])
                                                         for p, t in zip(preds[:3], targets[:3])])
    assert _torchmetrics_map(preds, targets, "segm")["map"] == pytest.approx(without["map"], abs=1e-6)


def test_coco_map_from_ious_refuses_ious_of_the_wrong_shape():
    preds, targets = _segm_case(0)
    with pytest.raises(ValueError, match="one D_i x G_i tensor per image"):
        coco_map_from_ious(preds, targets, [])
    ious = [masks.mask_iou(p["masks"], t["masks"]) for p, t in zip(preds, targets)]
    ious[0] = ious[0].T if ious[0].shape[0] != ious[0].shape[1] else torch.zeros(9, 9)
    with pytest.raises(ValueError, match=r"ious\[0\] must be D x G"):
        coco_map_from_ious(preds, targets, ious)


# ---- the references refuse bad inputs clearly ----------------------------------------------------
BAD = [
    (masks.mask_targets, (torch.ones(2, 8), T([[0.0, 0.0, 4.0, 4.0]]), T([0]), 4), ValueError, "gt_masks must be 3-D"),
    (masks.mask_targets, (torch.ones(2, 8, 8), T([[0.0, 0.0, 4.0, 4.0]]), T([2]), 4), ValueError, "index gt_masks"),
    (masks.mask_targets, (torch.ones(2, 8, 8), T([[0.0, 0.0, 4.0, 4.0]]), T([0, 1]), 4), ValueError,
     "one index per box"),
    (masks.mask_targets, (torch.ones(2, 8, 8), T([[0.0, 0.0, 4.0, 4.0]]), T([0.0]), 4), TypeError, "integer tensor"),
    (masks.mask_targets, (torch.ones(2, 8, 8), T([[4.0, 0.0, 0.0, 4.0]]), T([0]), 4), ValueError, "x1 <= x2"),
    (masks.mask_targets, (torch.ones(2, 8, 8), T([[0.0, 0.0, 4.0, 4.0]]), T([0]), 0), ValueError, "M must be >= 1"),
    (masks.mask_loss, (torch.randn(2, 3, 4, 4), torch.rand(2, 4, 5), T([1, 2])), ValueError, "K x M x M"),
    (masks.mask_loss, (torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4), T([1, 3])), ValueError, "class indices in 0..2"),
    (masks.mask_loss, (torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4) * 3, T([1, 2])), ValueError, r"lie in \[0, 1\]"),
    (masks.mask_loss, (torch.randn(2, 4, 4), torch.rand(2, 4, 4), T([1, 2])), ValueError, "mask_logits must be 4-D"),
    (masks.paste_masks, (torch.rand(2, 4, 5), torch.zeros(2, 4), (8, 8)), ValueError, "N x M x M"),
    (masks.paste_masks, (torch.rand(2, 4, 4), torch.zeros(3, 4), (8, 8)), ValueError, "one box per mask"),
    (masks.paste_masks, (torch.rand(2, 4, 4), torch.zeros(2, 4), (8, 8), 1.5), ValueError, "threshold must be <= 1"),
    (masks.paste_masks, (torch.rand(2, 4, 4), torch.zeros(2, 4), (8,)), TypeError, r"pair \(H, W\)"),
    (masks.paste_masks, (torch.rand(2, 4, 4) > 0.5, torch.zeros(2, 4), (8, 8)), TypeError, "floating-point"),
    (keypoints.keypoint_targets, (torch.rand(2, 3, 2), torch.ones(2, 4), 4), ValueError, "K x J x 3"),
    (keypoints.keypoint_targets, (torch.rand(2, 3, 3), T([[0.0, 0.0, 0.0, 4.0]] * 2), 4), ValueError, "positive width"),
    (keypoints.keypoint_targets, (torch.rand(2, 3, 3), T([[0.0, 0.0, 4.0, 4.0]] * 2), 0), ValueError, ">= 1"),
    (masks.mask_iou, (torch.rand(2, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool)), TypeError, "binary masks"),
    (masks.mask_iou, (torch.full((2, 4, 4), 255, dtype=torch.uint8), torch.ones(1, 4, 4, dtype=torch.bool)),
     ValueError, "only 0 and 1"),
    (masks.mask_iou, (torch.ones(2, 4, 4, dtype=torch.bool), torch.ones(1, 4, 5, dtype=torch.bool)), ValueError,
     "same image size"),
]


@pytest.mark.parametrize(("fn", "args", "error", "words"), BAD, ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)])
def test_the_references_refuse_bad_inputs_clearly(fn, args, error, words):
    with pytest.raises(error, match=words):
        fn(*args)


def test_the_references_keep_their_inputs():
    for ex in lab_exercises("07"):
        for case in cases(ex, 0):
            before = [a.clone() if isinstance(a, torch.Tensor) else a for a in case.args]
            ex.reference(*case.args, **case.kwargs)
            assert all(not isinstance(a, torch.Tensor) or torch.equal(a, b) for a, b in zip(case.args, before))


# ---- the checks' verdicts ------------------------------------------------------------------------
def test_roi_align_is_allowed_in_mask_targets():
    """The lab says a mask target IS a RoIAlign of the mask: torchvision's and the course's are not off-limits."""
    from course_utils.ops import roi_ops

    def with_torchvision(gt_masks, boxes, matched_idxs, M):
        rois = torch.cat([matched_idxs[:, None].to(boxes), boxes], 1)
        return torchvision.ops.roi_align(gt_masks[:, None].to(boxes), rois, (M, M), 1.0, -1, False)[:, 0]

    def with_the_course(gt_masks, boxes, matched_idxs, M):
        rois = torch.cat([matched_idxs[:, None].to(boxes), boxes], 1)
        return roi_ops.roi_align(gt_masks[:, None].to(boxes), rois, (M, M), 1.0, -1, False)[:, 0]

    for fn in (with_torchvision, with_the_course):
        fn.__module__ = "__main__"
        result = evaluate("07.mask_targets", fn)
        assert result.passed, result.message


def test_binary_cross_entropy_with_logits_is_allowed_in_mask_loss():
    def with_f(mask_logits, mask_targets, labels):
        if len(labels) == 0:
            return mask_logits.sum() * 0
        return torch.nn.functional.binary_cross_entropy_with_logits(
            mask_logits[torch.arange(len(labels)), labels], mask_targets)

    with_f.__module__ = "__main__"
    assert evaluate("07.mask_loss", with_f).passed


def test_the_mask_loss_check_compares_the_gradient():
    def half_gradient(mask_logits, mask_targets, labels):      # right value, half the gradient
        if len(labels) == 0:
            return mask_logits.sum() * 0
        picked = mask_logits[torch.arange(len(labels)), labels]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(picked, mask_targets)
        return loss * 0.5 + loss.detach() * 0.5

    half_gradient.__module__ = "__main__"
    result = evaluate("07.mask_loss", half_gradient)
    assert result.status == "failed" and "gradient with respect to argument 0" in result.message


def test_the_paste_check_tolerates_only_pixels_a_rounding_error_from_the_threshold():
    probs = torch.full((1, 4, 4), 0.5)
    probs[0, 1:3, 1:3] = 0.5 + PASTE_MARGIN / 2                             # near the threshold, not on it
    probs[0, 0, 0] = 0.9
    case = Case((probs, T([[0.0, 0.0, 3.0, 3.0]]), (6, 6)))
    expected = masks.paste_masks(*case.args)
    flipped_near = expected.clone()
    pasted = tv.paste_probabilities(*case.args)
    near = ((pasted - 0.5).abs() > 0) & ((pasted - 0.5).abs() <= PASTE_MARGIN)
    assert near.any()
    flipped_near[near] = ~flipped_near[near]
    assert _paste_verify(case, flipped_near, expected) is None
    far = expected.clone()
    far[0, 5, 5] = True                                                     # outside the box: probability 0
    assert "differ" in _paste_verify(case, far, expected)
    exact = torch.full((1, 4, 4), 0.5)
    on_it = Case((exact, T([[0.0, 0.0, 3.0, 3.0]]), (8, 8)))
    at_threshold = tv.paste_probabilities(*on_it.args) == 0.5
    assert at_threshold.any()
    pasted = masks.paste_masks(*on_it.args)
    assert "differ" in _paste_verify(on_it, pasted | at_threshold, pasted)
    assert "dtype" in _paste_verify(on_it, masks.paste_masks(*on_it.args).long(), masks.paste_masks(*on_it.args))


@pytest.mark.parametrize("seed", SEEDS)
def test_paste_cases_truncate_alike_in_float32_and_float64(seed):
    """Every case's grown boxes truncate to the same pixels in float32 and float64 arithmetic (no grown corner
    a rounding error from a whole number), so that a correct float64 implementation is never rejected."""
    for case in cases(PASTE_MASKS, seed):
        m, b = case.args[0], case.args[1]
        if len(b) == 0:
            continue
        g32 = tv.grown_boxes(b, m.shape[-1])
        g64 = tv.grown_boxes(b.double(), m.shape[-1])
        assert torch.equal(g32.to(torch.int64), g64.to(torch.int64)), case.note


def test_the_cases_are_well_formed():
    for ex in lab_exercises("07"):
        for seed in SEEDS:
            assert all(c.note for c in ex.cases(torch.Generator().manual_seed(seed)))
        assert len(cases(ex, 0)) >= 10


# ---- correct-but-different implementations (they run in tests/test_probes.py) --------------------
def test_every_exercise_has_two_probes():
    count = {ex.id: 0 for ex in lab_exercises("07")}
    for p in probes.PROBES:
        count[p.exercise] += 1
    assert all(n >= 2 for n in count.values()), count


# ---- every check runs under a second ---------------------------------------------------------------
@pytest.mark.parametrize("exercise", lab_exercises("07"), ids=lambda ex: ex.id)
def test_every_check_takes_under_a_second(exercise):
    student = as_student(exercise.reference, exercise.function)
    evaluate(exercise.id, student)            # imports and warm-up
    tick = time.process_time()   # CPU seconds (one torch thread): what the check costs, whatever the load
    result = evaluate(exercise.id, student, 271828)
    assert result.passed, result.message
    assert time.process_time() - tick < 1.0


def test_no_fixed_paste_case_grows_a_box_onto_a_whole_number():
    """A grown corner exactly on a whole number truncates one way or the other depending on the order of the float
    operations: the fixed cases keep away from them (as the random ones do), or sit on them exactly in both."""
    for case in cases(PASTE_MASKS, 0)[:6]:
        m, b = case.args[0], case.args[1]
        grown = tv.grown_boxes(b.double(), m.shape[-1])
        near = (grown - grown.round()).abs() < 1e-3
        assert not near.any() or case.note.startswith("a map of exactly 0.5"), (case.note, grown[near])
