"""The hand-written COCO AP against pycocotools' COCOeval (the definition) and torchmetrics'
MeanAveragePrecision (pycocotools on float32 grids)."""

import warnings

import numpy as np
import pytest
import torch
from _pycocotools import pycocotools_map
from torchmetrics.detection import MeanAveragePrecision

from course_utils.evaluation.detection import (
    average_precision,
    box_map,
    coco_map,
    coco_map_torchmetrics,
)


def torchmetrics_map(preds, targets):
    metric = MeanAveragePrecision(backend="pycocotools")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric.update(preds, targets)
        out = metric.compute()
    return {k: float(out[k]) for k in ("map", "map_50", "map_75")}


def random_case(seed: int, images: int = 5):
    """Jittered copies of the ground truth plus random boxes on a half-pixel grid, scores with ties,
    images without objects and a class (4) that is never in the ground truth."""
    g = torch.Generator().manual_seed(seed)

    def boxes(n):
        xy = torch.rand(n, 2, generator=g) * 60
        return (torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 30 + 1], 1) * 2).round() / 2

    preds, targets = [], []
    for _ in range(images):
        n_gt, n_extra = int(torch.randint(0, 4, (1,), generator=g)), int(torch.randint(0, 10, (1,), generator=g))
        gt, gt_labels = boxes(n_gt), torch.randint(1, 4, (n_gt,), generator=g)
        dt = torch.cat([gt + torch.randn(n_gt, 4, generator=g) * 3, boxes(n_extra)]).clamp(min=0)
        dt = torch.cat([dt[:, :2], torch.maximum(dt[:, 2:], dt[:, :2] + 0.5)], 1)
        labels = torch.cat([gt_labels, torch.randint(1, 5, (n_extra,), generator=g)])
        scores = (torch.rand(len(dt), generator=g) * 4).round() / 4
        preds.append({"boxes": dt, "scores": scores, "labels": labels})
        targets.append({"boxes": gt, "labels": gt_labels})
    return preds, targets


@pytest.mark.parametrize("seed", range(12))
def test_coco_map_equals_pycocotools(seed):
    preds, targets = random_case(seed)
    expected, out = pycocotools_map(preds, targets), coco_map(preds, targets)
    for key in expected:
        assert out[key] == pytest.approx(expected[key], abs=1e-9), key


@pytest.mark.parametrize("seed", range(12))
def test_coco_map_on_torchmetrics_grids_equals_torchmetrics(seed):
    preds, targets = random_case(seed)
    expected, out = torchmetrics_map(preds, targets), coco_map_torchmetrics(preds, targets)
    for key in expected:
        assert out[key] == pytest.approx(expected[key], abs=1e-6), key


def test_the_two_grids_differ_where_a_recall_sits_on_a_grid_point():
    """Recall 3/5 is below torch.linspace(0, 1, 101)[60] = 0.60000002: torchmetrics reads that recall point one rank
    later (after a false positive)."""
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    gt = {"boxes": torch.cat([box + 20 * i for i in range(5)]), "labels": torch.ones(5, dtype=torch.long)}
    dets = {"boxes": torch.cat([box, box + 20, box + 40, box + 100, box + 60, box + 80]),
            "scores": torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]), "labels": torch.ones(6, dtype=torch.long)}
    ours, theirs = coco_map([dets], [gt]), coco_map_torchmetrics([dets], [gt])
    assert ours["map_50"] == pytest.approx(pycocotools_map([dets], [gt])["map_50"], abs=1e-12)
    assert theirs["map_50"] == pytest.approx(torchmetrics_map([dets], [gt])["map_50"], abs=1e-6)
    assert ours["map_50"] != pytest.approx(theirs["map_50"], abs=1e-6)
    assert np.isclose(ours["map_50"], theirs["map_50"], atol=1e-2)


def test_fixed_cases():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    one = {"boxes": box, "labels": torch.tensor([1])}
    perfect = {"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}
    assert coco_map([perfect], [one]) == pytest.approx({"map": 1.0, "map_50": 1.0, "map_75": 1.0})  # 1 / (1 + eps)
    # a false positive of a class without ground truth costs nothing
    extra = {"boxes": torch.cat([box, box + 20]), "scores": torch.tensor([0.9, 0.95]), "labels": torch.tensor([1, 2])}
    assert coco_map([extra], [one])["map"] == pytest.approx(1.0)
    # a higher-ranked false positive of the same class halves precision at every recall
    fp = {"boxes": torch.cat([box, box + 20]), "scores": torch.tensor([0.9, 0.95]), "labels": torch.tensor([1, 1])}
    assert coco_map([fp], [one])["map_50"] == pytest.approx(0.5)
    # equal scores: the stable sort keeps the input order (the false positive first, then the hit)
    tie = {"boxes": torch.cat([box + 20, box]), "scores": torch.tensor([0.5, 0.5]), "labels": torch.tensor([1, 1])}
    assert coco_map([tie], [one])["map_50"] == pytest.approx(torchmetrics_map([tie], [one])["map_50"])
    assert coco_map([tie], [one])["map_50"] == pytest.approx(0.5)
    nothing = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    no_dets = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}
    assert coco_map([no_dets], [nothing])["map"] == -1.0 == torchmetrics_map([no_dets], [nothing])["map"]
    assert coco_map([no_dets, perfect], [one, one])["map_50"] == pytest.approx(torchmetrics_map(
        [no_dets, perfect], [one, one])["map_50"])


def test_average_precision_of_a_ranked_list():
    assert average_precision(torch.tensor([True, True]), 2) == pytest.approx(1.0)
    assert average_precision(torch.tensor([True, False, True]), 2) == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)
    assert average_precision(torch.tensor([True]), 2) == pytest.approx(51 / 101)     # recall stops at 0.5
    assert average_precision(torch.zeros(0, dtype=torch.bool), 3) == 0.0
    assert average_precision(torch.tensor([False]), 0) == -1.0


def test_box_map_wrapper_and_errors():
    preds, targets = random_case(99)
    out = box_map(preds, targets)
    assert set(out) == {"map", "map_50"} and out["map_50"] == pytest.approx(torchmetrics_map(preds, targets)["map_50"])
    with pytest.raises(ValueError, match="same length"):
        coco_map(preds, targets[:-1])
    with pytest.raises(ValueError, match="scores"):
        coco_map([{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}], targets[:1])
