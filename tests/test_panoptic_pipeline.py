"""Lab 08's pipeline (course_utils/training/recipes/panoptic.py): the FCN run at its own training size, Mask R-CNN
labels turned into the scenes' thing ids, one merged map per image, the held-out scenes; and the torchmetrics
wrapper the lab and the bench compare with."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.data.scenes import render_scenes
from course_utils.evaluation.panoptic import (
    VOID,
    panoptic_quality,
    torchmetrics_panoptic_quality,
)
from course_utils.exercises.lab08 import STUFFS, THINGS, _map, random_panoptic_pair
from course_utils.ops.panoptic import merge_panoptic
from course_utils.training.recipes.panoptic import (
    HELD_OUT_SEED,
    PANOPTIC,
    held_out_scenes,
    instance_predictions,
    panoptic_predictions,
    scene_config,
    semantic_prediction,
)
from course_utils.training.recipes.segmentation import FCN


class SizeProbe(nn.Module):
    """A 'semantic model' that records the size it is run at and votes for category 1 on the left half."""

    def __init__(self, classes: int = 6):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.classes, self.seen = classes, []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        logits = torch.zeros(x.shape[0], self.classes, *x.shape[-2:])
        logits[:, 1, :, : x.shape[-1] // 2] = 1.0
        return logits


def test_the_semantic_model_runs_at_its_training_size_and_answers_at_the_scene_size():
    model = SizeProbe()
    images = torch.rand(3, 3, 96, 96)
    out = semantic_prediction(model, images, "ci", batch_size=2)
    size = FCN["ci"].size
    assert model.seen == [(size, size), (size, size)]
    assert out.shape == (3, 96, 96) and out.dtype == torch.int64
    assert (out[:, :, :40] == 1).all() and (out[:, :, 56:] == 0).all()


class FixedDetector(nn.Module):
    """A 'Mask R-CNN' in eval mode: one detection per image, label 2 (the second thing), a soft mask."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, images):
        out = []
        for im in images:
            h, w = im.shape[-2:]
            masks = torch.zeros(1, 1, h, w)
            masks[0, 0, 2:6, 2:6] = 0.9
            masks[0, 0, 6:8, 2:6] = 0.4                   # under the mask threshold
            out.append({"boxes": torch.tensor([[2.0, 2.0, 6.0, 6.0]]), "scores": torch.tensor([0.8]),
                        "labels": torch.tensor([2]), "masks": masks})
        return out


def test_instances_carry_thing_ids_and_binary_masks():
    config = scene_config("ci")
    [d] = instance_predictions(FixedDetector(), torch.rand(1, 3, 16, 16), config, mask_threshold=0.5)
    assert d["labels"].tolist() == [config.thing_ids[1]] == [4]
    assert d["masks"].dtype == torch.bool and d["masks"].shape == (1, 16, 16) and int(d["masks"].sum()) == 16
    merged = panoptic_predictions(torch.zeros(1, 16, 16, dtype=torch.int64), [d], config.thing_ids, stuff_area=0)
    assert merged.shape == (1, 16, 16, 2)
    assert (merged[0, 2:6, 2:6] == torch.tensor([4, 1])).all() and (merged[0, 6:8, 2:6] == torch.tensor([0, 0])).all()


def test_panoptic_predictions_use_the_given_merge_and_check_their_input():
    calls = []

    def merge(*args, **kwargs):
        calls.append(kwargs)
        return merge_panoptic(*args, **kwargs)

    semantic = torch.zeros(2, 8, 8, dtype=torch.int64)
    empty = {"masks": torch.zeros(0, 8, 8, dtype=torch.bool), "scores": torch.zeros(0),
             "labels": torch.zeros(0, dtype=torch.int64)}
    out = panoptic_predictions(semantic, [empty, empty], THINGS, merge, stuff_area=0, score_threshold=0.3)
    assert calls == [{"stuff_area": 0, "score_threshold": 0.3}] * 2 and (out == 0).all()
    with pytest.raises(ValueError, match="one instance prediction per semantic map"):
        panoptic_predictions(semantic, [empty], THINGS)
    with pytest.raises((TypeError, ValueError), match="semantic"):
        panoptic_predictions(semantic.float(), [empty, empty], THINGS)


def test_held_out_scenes_are_lab_07s_scenes_with_their_own_seed():
    scenes = held_out_scenes("ci", n=2)
    assert len(scenes) == 2 and scenes.config == scene_config("ci")
    again = render_scenes(scene_config("ci"), range(2), seed=HELD_OUT_SEED)
    assert torch.equal(scenes.images, again.images)
    assert not torch.equal(scenes.images, render_scenes(scene_config("ci"), range(2), seed=10_000).images)
    assert PANOPTIC["cpu"].target == 0.70 and PANOPTIC["gpu"].target == 0.80 and PANOPTIC["ci"].target is None
    with pytest.raises((TypeError, ValueError), match="n"):
        held_out_scenes("ci", n=0)


def test_torchmetrics_wrapper_agrees_without_predicted_void_and_forgives_it_with():
    g = torch.Generator().manual_seed(3)
    pairs = [random_panoptic_pair(g, 12, 12, pred_void=False) for _ in range(3)]
    preds, target = torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs])
    ours = panoptic_quality(preds, target, THINGS, STUFFS)
    theirs = torchmetrics_panoptic_quality(preds, target, THINGS, STUFFS)
    assert set(theirs) == {"pq", "sq", "rq"}
    assert [theirs[k] for k in ("pq", "sq", "rq")] == pytest.approx([ours[k] for k in ("pq", "sq", "rq")], abs=1e-6)
    pred = _map("ssssssssss", "sAAAAs....", "sAAAAs..ss", "sAAAAs.sss", "s....sssss", "ssssssssss")
    truth = _map("ssssssssss", "sBBBBsCCCs", "sBBBBsCCCs", "sBBBBsCCss", "sBBBBsssss", "ssssssssss")
    assert (pred[..., 0] == VOID).any()
    lenient = torchmetrics_panoptic_quality(pred, truth, THINGS, STUFFS, per_class=True)
    assert lenient["per_class"][3]["pq"] == pytest.approx(1.0) and lenient["pq"] == pytest.approx((35 / 37 + 1) / 2)
    assert panoptic_quality(pred, truth, THINGS, STUFFS)["pq"] == pytest.approx((35 / 38 + 0.5) / 2)
    with pytest.raises(ValueError, match="same shape"):
        torchmetrics_panoptic_quality(pred, truth[:2], THINGS, STUFFS)
