"""Panoptic quality (course_utils.evaluation.panoptic) as COCO's panopticapi defines it: hand-computed
cases, agreement with torchmetrics' PanopticQuality where the two definitions agree (no predicted void),
the two places where they differ pinned, dataset accumulation, crowd regions, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from mutants.lab08 import pq_numpy
from torchmetrics.detection import PanopticQuality

from course_utils.evaluation.panoptic import (
    VOID,
    PanopticStats,
    _segments,
    panoptic_quality,
    panoptic_stats,
    segment_errors,
)
from course_utils.exercises.lab08 import STUFFS, THINGS, _map, random_panoptic_pair

SKY, CIRCLE = 0, 3


def torchmetrics_pq(preds, target, things=THINGS, stuffs=STUFFS):
    """torchmetrics' figures as ``{category: (pq, sq, rq)}`` and the overall ``(pq, sq, rq)``."""
    metric = PanopticQuality(set(things), set(stuffs), allow_unknown_preds_category=True, return_sq_and_rq=True,
                             return_per_class=True)
    metric.update(preds if preds.ndim == 4 else preds[None], target if target.ndim == 4 else target[None])
    rows = metric.compute()
    order = sorted(things) + sorted(stuffs)
    per_class = {c: tuple(float(v) for v in rows[k]) for k, c in enumerate(order)}
    overall = PanopticQuality(set(things), set(stuffs), allow_unknown_preds_category=True, return_sq_and_rq=True)
    overall.update(preds if preds.ndim == 4 else preds[None], target if target.ndim == 4 else target[None])
    return per_class, tuple(float(v) for v in overall.compute())


def flat(result):
    """Every number of a result, in order (NaN included), for comparisons with nan_ok."""
    return [result[k] for k in result if k != "per_class"] + \
        [v for c in result["per_class"] for v in result["per_class"][c].values()]


def assert_same(a, b):
    assert a.keys() == b.keys() and a["per_class"].keys() == b["per_class"].keys()
    assert flat(a) == pytest.approx(flat(b), rel=0, abs=0, nan_ok=True)


def figures(result, c):
    r = result["per_class"][c]
    return r["pq"], r["sq"], r["rq"]


# ---- hand-computed cases ----------------------------------------------------------------------
def test_a_perfect_prediction_scores_one_and_absent_classes_are_left_out():
    target = _map("sssss", "sAAss", "sAAgg", "ggg11", "ggg11")
    result = panoptic_quality(target, target, THINGS, STUFFS)
    assert (result["pq"], result["sq"], result["rq"]) == (1.0, 1.0, 1.0)
    assert result["pq_th"] == result["pq_st"] == 1.0
    water, square = result["per_class"][2], result["per_class"][4]
    assert math.isnan(water["pq"]) and math.isnan(square["sq"])
    assert (square["tp"], square["fp"], square["fn"]) == (0, 0, 0)
    assert list(result["per_class"]) == [0, 1, 2, 3, 4, 5]


def test_hand_computed_counts_iou_and_means():
    # the circle predicted on 6 pixels over its 4: IoU 4 / 6; the triangle missed; sky and ground: IoU of the maps
    pred = _map("sssss", "sAAAs", "sAAAg", "ggggg", "ggggg")
    target = _map("sssss", "sAAss", "sAAgg", "ggg11", "ggg11")
    result = panoptic_quality(pred, target, THINGS, STUFFS)
    circle = result["per_class"][CIRCLE]
    assert (circle["tp"], circle["fp"], circle["fn"]) == (1, 0, 0) and circle["sq"] == pytest.approx(4 / 6)
    triangle = result["per_class"][5]
    assert (triangle["tp"], triangle["fp"], triangle["fn"], triangle["pq"], triangle["sq"]) == (0, 0, 1, 0.0, 0.0)
    for c in (SKY, 1):
        t, p = target[..., 0] == c, pred[..., 0] == c
        assert result["per_class"][c]["sq"] == pytest.approx(int((t & p).sum()) / int((t | p).sum()))
    per = [result["per_class"][c]["pq"] for c in (0, 1, 3, 5)]
    assert result["pq"] == pytest.approx(sum(per) / 4)
    assert result["pq_th"] == pytest.approx((4 / 6 + 0.0) / 2)
    assert result["rq_th"] == pytest.approx((1.0 + 0.0) / 2)


def test_iou_exactly_one_half_is_not_a_match():
    result = panoptic_quality(_map("ssss", "AAAA", "ssss", "ssss"), _map("ssss", "BBBB", "BBBB", "ssss"), THINGS,
                              STUFFS)
    assert {k: result["per_class"][CIRCLE][k] for k in ("tp", "fp", "fn")} == {"tp": 0, "fp": 1, "fn": 1}


def test_empty_prediction_every_segment_is_missed():
    target = _map("ssAA", "ssAA", "gggg")
    result = panoptic_quality(torch.full_like(target, VOID), target, THINGS, STUFFS)
    assert result["pq"] == result["rq"] == result["sq"] == 0.0
    assert [result["per_class"][c]["fn"] for c in (0, 1, 3)] == [1, 1, 1]
    assert sum(result["per_class"][c]["fp"] for c in result["per_class"]) == 0


def test_only_stuff_and_only_things_images():
    stuff = panoptic_quality(_map("ssss", "sssg", "gggg"), _map("ssss", "ssgg", "gggg"), THINGS, STUFFS)
    assert math.isnan(stuff["pq_th"]) and stuff["pq"] == stuff["pq_st"]
    assert stuff["per_class"][SKY]["sq"] == pytest.approx(6 / 7) and stuff["per_class"][1]["sq"] == pytest.approx(5 / 6)
    things = panoptic_quality(_map("AABB", "AABB", "a111"), _map("AACC", "AACC", "aa11"), THINGS, STUFFS)
    assert math.isnan(things["pq_st"]) and things["pq"] == things["pq_th"]
    assert things["per_class"][CIRCLE]["tp"] == 2 and things["per_class"][4]["fp"] == 1  # square: IoU 1 / 2


def test_void_in_the_target_leaves_the_union_and_excuses_mostly_void_predictions():
    # IoU 4 / (6 + 4 - 4 - 2) = 1: the predicted circle's 2 pixels on target void are not in the union
    one = panoptic_quality(_map("sssss", "AAAss", "AAAss", "sssss"), _map("sssss", "AA..s", "AA..s", "sssss"),
                           THINGS, STUFFS)
    assert one["per_class"][CIRCLE]["sq"] == 1.0
    # an unmatched prediction 5 / 6 on void is not a false positive, 4 / 8 on void is
    five_sixths = panoptic_quality(_map("ssss", "sAAA", "sAAA", "ssss"), _map("ssss", "s...", "s..s", "Bsss"),
                                   THINGS, STUFFS)
    assert (five_sixths["per_class"][CIRCLE]["fp"], five_sixths["per_class"][CIRCLE]["fn"]) == (0, 1)
    half = panoptic_quality(_map("ssss", "AAAA", "AAAA", "ssss"), _map("ssss", "..BB", "..ss", "ssss"), THINGS, STUFFS)
    assert (half["per_class"][CIRCLE]["tp"], half["per_class"][CIRCLE]["fp"]) == (0, 1)


def test_unknown_target_categories_are_void_like_minus_one():
    pred = _map("sssss", "sAAAs", "sAAAs", "sssss")
    as_minus_one = panoptic_quality(pred, _map("sssss", "s...s", "ss..s", "Bssss"), THINGS, STUFFS)
    as_nine = panoptic_quality(pred, _map("sssss", "s...s", "ss**s", "Bssss"), THINGS, STUFFS)
    as_255 = _map("sssss", "s...s", "ss..s", "Bssss")
    as_255[as_255[..., 0] == VOID] = torch.tensor([255, 0])
    assert_same(as_minus_one, as_nine)
    assert_same(as_minus_one, panoptic_quality(pred, as_255, THINGS, STUFFS))


def test_stuff_instance_ids_are_ignored_thing_instance_ids_are_arbitrary():
    target = _map("sAAs", "sAAs", "ssss")
    pred = target.clone()
    pred[0, 0, 1], pred[2, 3, 1] = 7, 3                   # sky pixels with instance ids
    pred[pred[..., 0] == CIRCLE] = torch.tensor([CIRCLE, 42])
    assert panoptic_quality(pred, target, THINGS, STUFFS)["pq"] == 1.0


@pytest.mark.parametrize("seed", range(20))
def test_segments_are_what_unique_over_rows_gives(seed):
    """The fast segment listing equals ``torch.unique(dim=0)`` (keys, their order, the inverse), with small
    ids, negative ids and ids near int64's limits (the ranked fallback)."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 300, (1,), generator=g))
    pools = [torch.arange(-3, 6), torch.tensor([VOID, 0, 7, 2**40, -2**40]),
             torch.tensor([0, 1, 2**62, -2**63, 2**63 - 1])]
    cat = pools[seed % 3][torch.randint(0, len(pools[seed % 3]), (n,), generator=g)]
    inst = pools[(seed // 3) % 3][torch.randint(0, len(pools[(seed // 3) % 3]), (n,), generator=g)]
    keys, index = _segments(cat, inst)
    expected_keys, expected_index = torch.unique(torch.stack([cat, inst], 1), dim=0, return_inverse=True)
    assert torch.equal(keys, expected_keys) and torch.equal(index, expected_index)


def test_huge_thing_instance_ids_change_nothing():
    g = torch.Generator().manual_seed(5)
    pred, target = random_panoptic_pair(g, 12, 10)
    assert pred[..., 1].min() >= 0 and target[..., 1].max() < 1000
    huge_pred, huge_target = pred.clone(), target.clone()     # the same segments, ids spread over int64
    odd = pred[..., 1] % 2 == 1
    huge_pred[..., 1] = torch.where(odd, pred[..., 1] + 2**62, pred[..., 1] - 2**63)
    odd = target[..., 1] % 2 == 1
    huge_target[..., 1] = torch.where(odd, -target[..., 1] - 2**62, 2**63 - 1 - target[..., 1])
    assert_same(panoptic_quality(huge_pred, huge_target, THINGS, STUFFS),
                panoptic_quality(pred, target, THINGS, STUFFS))


def test_several_images_are_accumulated_not_averaged():
    preds = torch.stack([_map("sAAs", "sAAs", "ssss"), _map("ssss", "ssss", "ssss")])
    target = torch.stack([_map("sAAs", "sAAs", "ssss"), _map("ssss", "sBss", "ssss")])
    result = panoptic_quality(preds, target, THINGS, STUFFS)
    circle = result["per_class"][CIRCLE]
    assert (circle["tp"], circle["fn"]) == (1, 1) and circle["pq"] == pytest.approx(1 / 1.5)   # not (1 + 0) / 2
    sky = result["per_class"][SKY]
    assert sky["tp"] == 2 and sky["sq"] == pytest.approx((1.0 + 11 / 12) / 2)
    stats = panoptic_stats(preds[:1], target[:1], THINGS,
                           STUFFS) + panoptic_stats(preds[1:], target[1:], THINGS, STUFFS)
    assert_same(stats.summary(), result)
    single = [panoptic_quality(p, t, THINGS, STUFFS) for p, t in zip(preds, target)]
    assert result["pq"] != pytest.approx(sum(r["pq"] for r in single) / 2)


def test_one_image_three_dimensional_equals_a_batch_of_one():
    g = torch.Generator().manual_seed(3)
    pred, target = random_panoptic_pair(g, 12, 10)
    assert_same(panoptic_quality(pred, target, THINGS, STUFFS),
                panoptic_quality(pred[None], target[None], THINGS, STUFFS))


def test_nothing_to_count_gives_nan():
    result = panoptic_quality(_map("s.s.", ".s.s"), _map("....", "****"), THINGS, STUFFS)
    assert all(math.isnan(result[k]) for k in result if k != "per_class")
    empty = panoptic_quality(torch.zeros(0, 4, 4, 2, dtype=torch.int64), torch.zeros(0, 4, 4, 2, dtype=torch.int64),
                             THINGS, STUFFS)
    assert math.isnan(empty["pq"])


def test_crowd_regions_as_panopticapi_handles_them():
    # a prediction lying on its category's crowd region: not a false positive; the region is never missed
    on_crowd = panoptic_quality(_map("sAAs", "sAAs", "ssss"), _map("ooos", "ooos", "ssss"), THINGS, STUFFS, crowd=True)
    assert on_crowd["per_class"][CIRCLE]["tp"] + on_crowd["per_class"][CIRCLE]["fp"] + \
        on_crowd["per_class"][CIRCLE]["fn"] == 0
    assert on_crowd["per_class"][SKY]["sq"] == pytest.approx(6 / 8)     # the crowd pixels stay in the sky's union
    # off the region: a false positive; another category on it: no excuse, and a match still needs IoU > 0.5
    off = panoptic_quality(_map("ssAA", "ssAA", "ssss"), _map("ooss", "ooss", "ssss"), THINGS, STUFFS, crowd=True)
    assert off["per_class"][CIRCLE]["fp"] == 1
    other = panoptic_quality(_map("ss11", "ss11", "ssss"), _map("oo11", "oo11", "ssss"), THINGS, STUFFS, crowd=True)
    assert (other["per_class"][SKY]["tp"], other["per_class"][SKY]["fp"], other["per_class"][SKY]["fn"]) == (0, 1, 1)
    # a crowd region plus void: together more than half of the prediction
    mixed = panoptic_quality(_map("AAAs", "ssss"), _map("o.ss", "ssss"), THINGS, STUFFS, crowd=True)
    assert mixed["per_class"][CIRCLE]["fp"] == 0
    # without crowd=True, instance 0 is an ordinary instance
    plain = panoptic_quality(_map("AAAs", "AAAs", "ssss"), _map("ooss", "ooss", "ssss"), THINGS, STUFFS)
    assert plain["per_class"][CIRCLE]["tp"] == 1


# ---- torchmetrics: where it agrees, where it differs ------------------------------------------
def test_agrees_with_torchmetrics_without_predicted_void():
    g = torch.Generator().manual_seed(2024)
    compared = 0
    for _ in range(150):
        b, h, w = int(torch.randint(1, 4, (1,), generator=g)), int(torch.randint(6, 20, (1,), generator=g)), \
            int(torch.randint(6, 20, (1,), generator=g))
        pairs = [random_panoptic_pair(g, h, w, pred_void=False) for _ in range(b)]
        preds, target = torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs])
        ours = panoptic_quality(preds, target, THINGS, STUFFS)
        theirs, overall = torchmetrics_pq(preds, target)
        for c, row in theirs.items():
            if math.isnan(ours["per_class"][c]["pq"]):
                assert row == (0.0, 0.0, 0.0)
            else:
                assert figures(ours, c) == pytest.approx(row, abs=1e-6), (c, ours["per_class"][c], row)
                compared += 1
        assert (ours["pq"], ours["sq"], ours["rq"]) == pytest.approx(overall, abs=1e-6, nan_ok=True)
    assert compared > 400


def test_agrees_with_a_transcription_of_panopticapi_with_void_and_crowd():
    g = torch.Generator().manual_seed(7)
    for _ in range(60):
        crowd = bool(torch.randint(0, 2, (1,), generator=g))
        pairs = [random_panoptic_pair(g, 14, 11, crowd=crowd) for _ in range(2)]
        preds, target = torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs])
        ours, theirs = panoptic_quality(preds, target, THINGS, STUFFS,
                                        crowd), pq_numpy(preds, target, THINGS, STUFFS, crowd)
        assert ours.keys() == theirs.keys() and ours["per_class"].keys() == theirs["per_class"].keys()
        assert flat(ours) == pytest.approx(flat(theirs), nan_ok=True)


def test_difference_one_torchmetrics_union_also_drops_the_predicted_void_part_of_the_target():
    pred = _map("sssss", "sAA.s", "sAA.s", "sssss")
    target = _map("sssss", "sBBBs", "sBBBs", "sssss")
    ours, (theirs, _) = panoptic_quality(pred, target, THINGS, STUFFS), torchmetrics_pq(pred, target)
    assert ours["per_class"][CIRCLE]["sq"] == pytest.approx(4 / 6)     # COCO: union 4 + 6 - 4
    assert theirs[CIRCLE][1] == pytest.approx(1.0)                      # torchmetrics: union 4 + 6 - 2 - 4


def test_difference_two_torchmetrics_does_not_count_a_target_mostly_predicted_void():
    pred = _map("sssss", "s...s", "s.sss", "sssss")
    target = _map("sssss", "sBBBs", "sBBBs", "sssss")
    ours, (theirs, _) = panoptic_quality(pred, target, THINGS, STUFFS), torchmetrics_pq(pred, target)
    assert ours["per_class"][CIRCLE]["fn"] == 1 and ours["per_class"][CIRCLE]["pq"] == 0.0
    assert theirs[CIRCLE] == (0.0, 0.0, 0.0)      # no segment counted at all: torchmetrics leaves the class out
    assert math.isnan(panoptic_quality(pred, target, THINGS, STUFFS)["per_class"][4]["pq"])


def test_the_notebook_case_both_differences_at_once():
    """The lab's constructed case: circle B predicted 12 of 16 pixels, its other 4 void; circle C 6 of 8 void."""
    pred = _map("ssssssssss", "sAAAAs....", "sAAAAs..ss", "sAAAAs.sss", "s....sssss", "ssssssssss")
    target = _map("ssssssssss", "sBBBBsCCCs", "sBBBBsCCCs", "sBBBBsCCss", "sBBBBsssss", "ssssssssss")
    ours = panoptic_quality(pred, target, THINGS, STUFFS)
    theirs, overall = torchmetrics_pq(pred, target)
    circle = ours["per_class"][CIRCLE]
    assert (circle["tp"], circle["fp"], circle["fn"]) == (1, 0, 1)
    assert figures(ours, CIRCLE) == pytest.approx((0.75 / 1.5, 0.75, 1 / 1.5))       # IoU 12 / 16, C missed
    assert figures(ours, SKY) == pytest.approx((35 / 38, 35 / 38, 1.0))
    assert ours["pq"] == pytest.approx((35 / 38 + 0.5) / 2)                            # 0.7105
    assert theirs[CIRCLE] == pytest.approx((1.0, 1.0, 1.0))                            # IoU 12 / 12, C not counted
    assert theirs[SKY] == pytest.approx((35 / 37, 35 / 37, 1.0))
    assert overall[0] == pytest.approx((35 / 37 + 1.0) / 2)                            # 0.9730


def test_disagreement_with_torchmetrics_happens_only_with_predicted_void():
    g = torch.Generator().manual_seed(11)
    differ = 0
    for _ in range(60):
        pred, target = random_panoptic_pair(g, 12, 12, pred_void=True)
        ours = panoptic_quality(pred, target, THINGS, STUFFS)
        _, overall = torchmetrics_pq(pred, target)
        if (ours["pq"], ours["sq"], ours["rq"]) != pytest.approx(overall, abs=1e-6, nan_ok=True):
            differ += 1
            filled = pred.clone()
            filled[filled[..., 0] == VOID] = torch.tensor([SKY, 0])          # the same prediction without void
            _, agreed = torchmetrics_pq(filled, target)
            mine = panoptic_quality(filled, target, THINGS, STUFFS)
            assert (mine["pq"], mine["sq"], mine["rq"]) == pytest.approx(agreed, abs=1e-6, nan_ok=True)
    assert differ > 10


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("preds, target, things, stuffs, error, match", [
    (torch.zeros(4, 4, 2), torch.zeros(4, 4, 2, dtype=torch.long), THINGS, STUFFS, TypeError, "integer tensor"),
    (torch.zeros(4, 4, 2, dtype=torch.bool), torch.zeros(4, 4, 2, dtype=torch.long), THINGS, STUFFS, TypeError, "bool"),
    (torch.zeros(4, 4, dtype=torch.long), torch.zeros(4, 4, dtype=torch.long), THINGS, STUFFS, ValueError,
     "3-D or 4-D"),
    (torch.zeros(4, 4, 3, dtype=torch.long), torch.zeros(4, 4, 3, dtype=torch.long), THINGS, STUFFS, ValueError, "x 2"),
    (torch.zeros(4, 4, 2, dtype=torch.long), torch.zeros(5, 4, 2, dtype=torch.long), THINGS, STUFFS, ValueError,
     "same shape"),
    (torch.zeros(4, 4, 2, dtype=torch.long), [[0]], THINGS, STUFFS, TypeError, "torch.Tensor"),
    (torch.zeros(4, 4, 2, dtype=torch.long), torch.zeros(4, 4, 2, dtype=torch.long), (1, 3), (0, 1), ValueError,
     "disjoint.*\\[1\\]"),
    (torch.zeros(4, 4, 2, dtype=torch.long), torch.zeros(4, 4, 2, dtype=torch.long), (), [], ValueError, "both empty"),
    (torch.zeros(4, 4, 2, dtype=torch.long), torch.zeros(4, 4, 2, dtype=torch.long), (3.0,), (0,), TypeError,
     "int category ids"),
    (torch.zeros(4, 4, 2, dtype=torch.long), torch.zeros(4, 4, 2, dtype=torch.long), 3, (0,), TypeError, "collection"),
    (torch.zeros(4, 4, 2, dtype=torch.long), torch.zeros(4, 4, 2, dtype=torch.long), (-1, 3), (0,), ValueError, ">= 0"),
    (torch.full((4, 4, 2), 7), torch.zeros(4, 4, 2, dtype=torch.long), THINGS, STUFFS, ValueError,
     "category ids \\[7\\].*VOID"),
])
def test_bad_input_is_refused_clearly(preds, target, things, stuffs, error, match):
    with pytest.raises(error, match=match):
        panoptic_quality(preds, target, things, stuffs)


def test_crowd_must_be_a_bool_and_counts_add_only_for_the_same_categories():
    maps = torch.zeros(4, 4, 2, dtype=torch.long)
    with pytest.raises(TypeError, match="crowd"):
        panoptic_quality(maps, maps, THINGS, STUFFS, crowd="yes")
    with pytest.raises(ValueError, match="different categories"):
        panoptic_stats(maps, maps, THINGS, STUFFS) + panoptic_stats(maps, maps, (3,), (0,))
    assert isinstance(panoptic_stats(maps, maps, THINGS, STUFFS), PanopticStats)


# ---- what went wrong ----------------------------------------------------------------------------
NAMES = ["sky", "ground", "water", "circle", "square", "triangle"]


def kinds(pred, target, **kwargs):
    return {(e.side, NAMES[e.category], e.instance, e.kind) for e in
            segment_errors(pred, target, THINGS, STUFFS, names=NAMES, **kwargs)}


def test_segment_errors_name_each_way_of_losing_pq():
    # two circles merged into one predicted segment; a false square on the ground; a triangle too big (IoU 1 / 2)
    pred = _map("sssssss", "sAAAAAs", "sAAAAAs", "sss11ss", "sss11ss", "ggggggg", "ggaaggg")
    target = _map("sssssss", "sAAsBBs", "sAAsBBs", "sssssss", "sss22ss", "ggggggg", "ggggggg")
    assert kinds(pred, target) == {
        ("target", "circle", 1, "merged"), ("target", "circle", 2, "merged"), ("prediction", "circle", 1, "merged"),
        ("prediction", "square", 1, "false"), ("prediction", "triangle", 1,
                                               "false"), ("target", "triangle", 2, "missed")}
    # stuff eaten by a false circle, ground predicted as water, a ground segment too small to match it
    pred = _map("AAAAAs", "AAAAAs", "sssBBs", "sssBBs", "ggwwww", "ggwwww")
    target = _map("AAAAss", "AAAAss", "ssssss", "ssss..", "gggggg", "gggggg")
    errors = segment_errors(pred, target, THINGS, STUFFS, names=NAMES)
    assert {(NAMES[e.category], e.kind) for e in errors} == {
        ("sky", "eaten"), ("ground", "wrong category"), ("ground", "false"), ("water", "false"), ("circle", "false")}
    eaten = next(e for e in errors if e.kind == "eaten")
    assert eaten.reason == "sky: 3 of its 14 pixels taken by a false circle" and eaten.area == 14
    assert torch.equal(eaten.mask, target[..., 0] == SKY)
    assert [e.category for e in errors] == sorted(e.category for e in errors)


def test_segment_errors_left_void_poor_match_split_and_batches():
    pred = torch.stack([_map("ssss", "s..s", "s..s", "AAAA"), _map("AAss", "AAss", "BBss", "ssss")])
    target = torch.stack([_map("ssss", "sCCs", "sCCs", "AAAA"), _map("AAss", "AAss", "AAss", "ssss")])
    found = {(e.image, e.side, NAMES[e.category], e.kind)
             for e in segment_errors(pred, target, THINGS, STUFFS, names=NAMES)}
    assert found == {(0, "target", "circle", "left void"),        # circle C: its 4 pixels predicted void
                     (1, "target", "circle", "poor match"),        # IoU 4 / 6 < 0.75
                     (1, "prediction", "circle", "split")}         # B: a second segment on the matched circle
    assert {e.kind for e in segment_errors(pred, target, THINGS, STUFFS, poor_iou=0.5)} == {"left void", "split"}
    assert segment_errors(target, target, THINGS, STUFFS) == []


def test_segment_errors_check_their_input():
    maps = torch.zeros(4, 4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="poor_iou"):
        segment_errors(maps, maps, THINGS, STUFFS, poor_iou=2)
    with pytest.raises(ValueError, match="disjoint"):
        segment_errors(maps, maps, (0,), (0,))
