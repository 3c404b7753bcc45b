"""Lab 06's TinyYOLO, its batches and detection, and the detectors' recipes (save / load of lab 05's model)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from course_utils.config import Profile
from course_utils.data import SceneConfig, render_scenes
from course_utils.data.yolo import YoloBatches, grid_targets
from course_utils.models.detection import TinyYOLO, yolo_detect
from course_utils.ops.yolo import decode, yolo_loss, yolo_loss_terms
from course_utils.training import checkpoints
from course_utils.training.recipes import detection as recipes

SCENES = SceneConfig(size=96, max_things=3)


@pytest.fixture(scope="module")
def scenes():
    s = render_scenes(SCENES, range(4), seed=3)
    return s, [s.target(i) for i in range(len(s))]


def small(grid: int = 6, **kw) -> TinyYOLO:
    torch.manual_seed(0)
    return TinyYOLO(3, grid, width=8, stride=96 // grid, **kw)


def test_output_shape_and_ranges():
    model = small(num_boxes=2)
    assert (model.grid, model.num_boxes, model.num_classes, model.image_size) == (6, 2, 3, 96)
    out = model(torch.rand(2, 3, 96, 96))
    assert out.shape == (2, 6, 6, 5 * 2 + 3)
    boxes = out[..., :10]
    assert ((boxes > 0) & (boxes < 1)).all()                         # sigmoid on x, y, w, h, confidence
    torch.testing.assert_close(out[..., 10:].sum(-1), torch.ones(2, 6, 6))   # softmax on the classes
    assert small(12, num_boxes=1)(torch.rand(1, 3, 96, 96)).shape == (1, 12, 12, 8)


def test_clear_errors():
    model = small()
    with pytest.raises(ValueError, match="96 x 96"):
        model(torch.rand(1, 3, 100, 100))                            # not a multiple of the stride
    with pytest.raises(ValueError, match="96 x 96"):
        model(torch.rand(1, 3, 128, 128))                            # a multiple, but another grid
    with pytest.raises(ValueError, match="3 channels"):
        model(torch.rand(1, 1, 96, 96))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.rand(3, 96, 96))
    with pytest.raises(ValueError, match="power of 2"):
        TinyYOLO(3, 6, stride=12)


def test_grid_targets_shift_labels(scenes):
    _, targets = scenes
    t = grid_targets(targets, 6, 3, 96)
    assert t.shape == (4, 6, 6, 8) and t.dtype == torch.float32
    for i, target in enumerate(targets):
        cells = t[i][t[i, ..., 4] == 1]
        assert len(cells) == len({tuple(((b[:2] + b[2:]) / 2 * 6 / 96).floor().tolist()) for b in target["boxes"]})
        assert set(cells[:, 5:].argmax(1).tolist()) <= set((target["labels"] - 1).tolist())
    one = {"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0]]), "labels": torch.tensor([3])}
    assert grid_targets([one], 6, 3, 96)[0, 1, 1, 5:].tolist() == [0.0, 0.0, 1.0]   # label 3 -> class 2
    with pytest.raises(ValueError, match="1 .. 3"):
        grid_targets([dict(one, labels=torch.tensor([0]))], 6, 3, 96)
    with pytest.raises(ValueError, match="non-empty list"):
        grid_targets(one, 6, 3, 96)


def test_yolo_batches_shapes_determinism_and_flips():
    batches = YoloBatches(SCENES, 4, 6, seed=1, pool=8)
    images, targets = batches(5)
    assert images.shape == (4, 3, 96, 96) and targets.shape == (4, 6, 6, 8)
    again = YoloBatches(SCENES, 4, 6, seed=1, pool=8)(5)
    assert torch.equal(images, again[0]) and torch.equal(targets, again[1])
    assert not torch.equal(images, batches(6)[0])
    plain = YoloBatches(SCENES, 4, 6, seed=1, pool=8, flip=False)(5)
    flipped = [not torch.equal(a, b) for a, b in zip(images, plain[0])]
    assert any(flipped)
    for i, f in enumerate(flipped):                                  # a flipped scene is the mirror image
        torch.testing.assert_close(images[i], plain[0][i].flip(-1) if f else plain[0][i])
        assert targets[i, ..., 4].sum() == plain[1][i, ..., 4].sum()
        if f:
            torch.testing.assert_close(targets[i, ..., 4], plain[1][i, ..., 4].flip(-1))


def test_yolo_detect_conventions(scenes):
    images, _ = scenes
    model = small().train()
    out = yolo_detect(model, images.images, score_threshold=0.0, batch_size=3)
    assert model.training                                            # mode restored
    assert len(out) == 4
    for d in out:
        assert set(d) == {"boxes", "scores", "labels"}
        assert all(v.device.type == "cpu" for v in d.values())
        assert len(d["labels"]) and d["labels"].min() >= 1 and d["labels"].max() <= 3
    model.eval()
    with torch.no_grad():
        ref = decode(model(images.images[:1])[0], 3, 96, 0.0, 0.5)
    torch.testing.assert_close(out[0]["labels"], ref["labels"] + 1)
    calls = []

    def my_decode(pred, num_classes, image_size, score_threshold, iou_threshold):
        calls.append((tuple(pred.shape), num_classes, image_size, score_threshold, iou_threshold))
        return decode(pred, num_classes, image_size, score_threshold, iou_threshold)

    yolo_detect(model, list(images.images[:2]), decode_fn=my_decode)
    assert calls == [((6, 6, 13), 3, (96, 96), 0.2, 0.5)] * 2
    assert not model.training


def test_few_steps_reduce_the_loss():
    images, targets = YoloBatches(SCENES, 4, 6, seed=0, pool=4)(0)
    model = small()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = yolo_loss(model(images), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert set(yolo_loss_terms(model(images), targets)) == {"coord", "object", "no_object", "class"}


def test_recipes_build_both_detectors():
    for name in ("ci", "cpu", "gpu"):
        s = recipes.YOLO[name]
        model = recipes.build_yolo(s, 3)
        assert model.image_size == s.size and model.grid == s.grid
        assert recipes.FASTER_RCNN[name].size == s.size        # the same scenes as lab 05
    assert recipes.FASTER_RCNN["cpu"].steps == 1500               # the recipe FASTER_RCNN_MEASURED["cpu"] measured
    with pytest.raises(TypeError, match="YoloRecipe"):
        recipes.build_yolo({"size": 96}, 3)
    with pytest.raises(TypeError, match="FasterRCNNRecipe"):
        recipes.build_faster_rcnn(recipes.YOLO["ci"], 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipes.YOLO["ci"].steps = 1


def test_save_trained_round_trip_and_refusal(tmp_path, capsys):
    profile = Profile("ci", torch.device("cpu"))
    settings = recipes.FASTER_RCNN["ci"]
    torch.manual_seed(1)
    model = recipes.build_faster_rcnn(settings, 4)
    path = recipes.faster_rcnn_path(profile, tmp_path)
    assert path == tmp_path / "05_faster_rcnn_ci.pt"
    with pytest.raises(FileNotFoundError, match="lab 05"):
        recipes.trained_faster_rcnn(profile, tmp_path, train_if_missing=False)
    checkpoints.save_trained(model, settings, path)
    loaded = recipes.trained_faster_rcnn(profile, tmp_path)
    assert "loaded from" in capsys.readouterr().out and not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    checkpoints.save_trained(model, dataclasses.replace(settings, steps=settings.steps + 1), path)
    with pytest.raises(ValueError, match=f"steps: saved {settings.steps + 1}, wanted {settings.steps}"):
        recipes.trained_faster_rcnn("ci", tmp_path)
    checkpoints.save_trained(model, recipes.YOLO["ci"], path)
    with pytest.raises(ValueError, match="YoloRecipe"):
        recipes.trained_faster_rcnn("ci", tmp_path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(pickle.UnpicklingError):
        recipes.trained_faster_rcnn("ci", tmp_path)
