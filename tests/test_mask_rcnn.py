"""Lab 07's models: the small Mask R-CNN and keypoint R-CNN, the student's pieces inside them (same losses,
same step, same predictions as torchvision's with the reference pieces), bad input, and the evaluation."""

import pytest
import torch
import torch.nn.functional as F
from _detector_steps import losses as losses_of
from _detector_steps import sgd_step
from _student import as_student
from torchvision.models.detection.roi_heads import (
    keypoints_to_heatmap,
    paste_masks_in_image,
    project_masks_on_boxes,
)

from course_utils.data import FigureConfig, SceneConfig, render_figures, render_scenes
from course_utils.evaluation.detection import instance_map
from course_utils.evaluation.keypoints import keypoint_map
from course_utils.grading.check import CheckFailed
from course_utils.models.detection import (
    Pieces,
    choose_pieces,
    detect,
    instance_masks,
    small_keypoint_rcnn,
    small_mask_rcnn,
)
from course_utils.models.detection import pieces as pieces_module
from course_utils.models.detection.roi_heads import PieceRoIHeads, PieceTransform
from course_utils.ops.nms import nms as course_nms

TINY = {"width": 8, "depth": 1, "representation": 32}


# torchvision's own functions wrapped to the signatures of lab 07's exercises: the "student's" pieces
def mask_targets(gt_masks, boxes, matched_idxs, M):
    return project_masks_on_boxes(gt_masks, boxes, matched_idxs, M)


def mask_loss(mask_logits, mask_targets, labels):
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    return F.binary_cross_entropy_with_logits(mask_logits[torch.arange(len(labels)), labels], mask_targets)


def paste_masks(masks, boxes, image_size, threshold=0.5):
    return paste_masks_in_image(masks[:, None], boxes, image_size, padding=1)[:, 0] > threshold


def keypoint_targets(keypoints, rois, heatmap_size):
    return keypoints_to_heatmap(keypoints, rois, heatmap_size)


STUDENT = Pieces(**{f.__name__: as_student(f) for f in (mask_targets, mask_loss, paste_masks, keypoint_targets)})


@pytest.fixture(scope="module")
def scenes():
    s = render_scenes(SceneConfig(size=64, max_things=2), range(2), seed=3)
    return list(s.images), [s.target(i) for i in range(2)]


@pytest.fixture(scope="module")
def figures():
    f = render_figures(FigureConfig(size=64, max_figures=2), range(2), seed=3)
    return list(f.images), [f.target(i) for i in range(2)]


def test_mask_rcnn_shapes_and_sizes(scenes):
    images, targets = scenes
    torch.manual_seed(0)
    model = small_mask_rcnn(4, 64, mask_layers=(16, 16), **TINY)
    losses = losses_of(model, images, targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    out = detect(model, images)
    model.eval()
    with torch.no_grad():
        raw = model(images)
    assert raw[0]["masks"].shape == (len(raw[0]["boxes"]), 1, 64, 64) and raw[0]["masks"].dtype == torch.float32
    assert ((raw[0]["masks"] >= 0) & (raw[0]["masks"] <= 1)).all()
    logits = model.roi_heads.mask_predictor(model.roi_heads.mask_head(torch.zeros(3, 32, 14, 14)))
    assert logits.shape == (3, 4, 28, 28)                     # C x 28 x 28 per RoI from 14 x 14 features
    assert model.transform.min_size == (64,) and model.transform.max_size == 64
    assert set(out[0]) == {"boxes", "scores", "labels", "masks"}
    binary = instance_masks(out)
    assert binary[0]["masks"].dtype == torch.bool and binary[0]["masks"].shape == (len(out[0]["boxes"]), 64, 64)


def test_keypoint_rcnn_shapes(figures):
    images, targets = figures
    torch.manual_seed(0)
    model = small_keypoint_rcnn(2, 9, 64, keypoint_layers=(16, 16), **TINY)
    losses = losses_of(model, images, targets)
    assert "loss_keypoint" in losses and torch.isfinite(losses["loss_keypoint"])
    logits = model.roi_heads.keypoint_predictor(model.roi_heads.keypoint_head(torch.zeros(2, 32, 14, 14)))
    assert logits.shape == (2, 9, 56, 56)                     # K x 56 x 56 heatmaps
    out = detect(model, images)
    assert out[0]["keypoints"].shape == (len(out[0]["boxes"]), 9, 3) and out[0]["keypoints_scores"].shape[1] == 9


def test_pieces_give_torchvision_losses_step_and_predictions(scenes):
    images, targets = scenes
    torch.manual_seed(0)
    plain = small_mask_rcnn(4, 64, mask_layers=(16,), **TINY)
    ours = small_mask_rcnn(4, 64, mask_layers=(16,), pieces=STUDENT, **TINY)
    ours.load_state_dict(plain.state_dict())
    assert isinstance(ours.roi_heads, PieceRoIHeads) and isinstance(ours.transform, PieceTransform)
    assert type(plain.roi_heads).__name__ == "RoIHeads"      # without pieces: torchvision's model as it is
    want, got = losses_of(plain, images, targets), losses_of(ours, images, targets)
    assert set(want) == set(got)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=k)
    after_plain, after_ours = sgd_step(plain, images, targets), sgd_step(ours, images, targets)
    for k in after_plain:
        torch.testing.assert_close(after_ours[k], after_plain[k], rtol=1e-5, atol=1e-6, msg=k)
    plain_out, our_out = detect(plain, images), detect(ours, images)
    for p, o in zip(plain_out, our_out):
        assert len(p["boxes"]) > 0
        torch.testing.assert_close(o["boxes"], p["boxes"])
        assert torch.equal(o["masks"], (p["masks"] > 0.5).float())      # the pasted masks, thresholded
    # one piece alone: the rest stays torchvision's
    only_loss = small_mask_rcnn(4, 64, mask_layers=(16,), pieces=Pieces(mask_loss=STUDENT.mask_loss), **TINY)
    only_loss.load_state_dict(plain.state_dict())
    plain.load_state_dict(only_loss.state_dict())
    torch.testing.assert_close(losses_of(only_loss, images, targets)["loss_mask"],
                               losses_of(plain, images, targets)["loss_mask"])


def test_pieces_are_called_and_no_roi_gives_zero_loss(scenes):
    images, targets = scenes
    calls = []

    def counting(gt_masks, boxes, matched_idxs, M):
        calls.append((gt_masks.shape, boxes.shape, M))
        return mask_targets(gt_masks, boxes, matched_idxs, M)

    torch.manual_seed(0)
    model = small_mask_rcnn(4, 64, mask_layers=(16,), pieces=Pieces(mask_targets=counting, mask_loss=mask_loss), **TINY)
    losses_of(model, images, targets)
    assert len(calls) == 2 and all(m == 28 for *_, m in calls)              # once per image, M = 28
    empty = [{**t, "boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
              "masks": torch.zeros(0, 64, 64, dtype=torch.uint8)} for t in targets]
    loss = losses_of(model, images, empty)["loss_mask"]
    assert loss.item() == 0 and loss.requires_grad


def test_keypoint_pieces_give_torchvision_losses(figures):
    images, targets = figures
    torch.manual_seed(0)
    plain = small_keypoint_rcnn(2, 9, 64, keypoint_layers=(16,), **TINY)
    ours = small_keypoint_rcnn(2, 9, 64, keypoint_layers=(16,), pieces=STUDENT, **TINY)
    ours.load_state_dict(plain.state_dict())
    want, got = losses_of(plain, images, targets), losses_of(ours, images, targets)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=k)
    torch.testing.assert_close(detect(ours, images)[0]["keypoints"], detect(plain, images)[0]["keypoints"])


def test_training_is_deterministic(scenes):
    images, targets = scenes
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        states.append(sgd_step(small_mask_rcnn(4, 64, mask_layers=(16,), **TINY), images, targets))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_bad_input():
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        small_mask_rcnn(1, 64)
    with pytest.raises(ValueError, match="mask_layers must list at least one"):
        small_mask_rcnn(4, 64, mask_layers=())
    with pytest.raises(ValueError, match="mask_threshold must be <= 1"):
        small_mask_rcnn(4, 64, mask_threshold=1.5)
    with pytest.raises(TypeError, match="pieces must be a Pieces"):
        small_mask_rcnn(4, 64, pieces={"mask_loss": mask_loss})
    with pytest.raises(ValueError, match="num_keypoints must be >= 1"):
        small_keypoint_rcnn(2, 0, 64)
    with pytest.raises(TypeError, match="piece 'mask_loss' must be a function"):
        Pieces(mask_loss=3)
    with pytest.raises(ValueError, match="unknown piece"):
        choose_pieces(verbose=False, mask_los=mask_loss)
    with pytest.raises(ValueError, match="'masks'"):
        instance_masks([{"boxes": torch.zeros(0, 4)}])
    with pytest.raises(ValueError, match="N x 1 x H x W or N x H x W"):
        instance_masks([{"masks": torch.zeros(2, 3, 8, 8)}])
    with pytest.raises(ValueError, match="paste the predictions"):
        instance_map([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long),
                       "masks": torch.zeros(0, 1, 28, 28)}],
                     [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
                       "masks": torch.zeros(0, 64, 64)}])


def test_choose_pieces_through_the_checks(monkeypatch, capsys):
    """The fallback rule, on an exercise of lab 05 standing in for a piece's (only the rule is tested here)."""
    monkeypatch.setattr(pieces_module, "EXERCISES", {**pieces_module.EXERCISES, "mask_loss": "05.nms"})
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    good = as_student(course_nms)

    def wrong(boxes, scores, iou_threshold):
        return torch.argsort(scores, descending=True)       # no suppression at all

    def todo(boxes, scores, iou_threshold):
        raise NotImplementedError

    chosen = choose_pieces(mask_loss=good)
    assert chosen.mask_loss is good and chosen.whose["mask_loss"] == "yours"
    assert "mask_loss | yours" in capsys.readouterr().out
    chosen = choose_pieces(mask_loss=wrong)
    assert chosen.mask_loss is course_nms
    assert chosen.whose["mask_loss"] == "the course's because yours fails: failed on case 1 of 10"
    assert "mask_loss | the course's because yours fails: failed on case 1" in capsys.readouterr().out
    chosen = choose_pieces(verbose=False, mask_loss=todo)
    assert chosen.whose["mask_loss"] == "the course's because yours fails: not implemented"
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(CheckFailed):
        choose_pieces(mask_loss=wrong)


def test_instance_map_and_keypoint_map():
    s = render_scenes(SceneConfig(size=48, max_things=2), range(3), seed=5)
    targets = [s.target(i) for i in range(3)]
    perfect = [{**t, "scores": torch.ones(len(t["boxes"])), "masks": t["masks"][:, None].float()} for t in targets]
    assert instance_map(perfect, targets) == {"map": 1.0, "map_50": 1.0, "mask_map": 1.0, "mask_map_50": 1.0}
    eroded = [{**p, "masks": p["masks"] * 0} for p in perfect]          # right boxes, empty masks
    scores = instance_map(eroded, targets)
    assert scores["map"] == 1.0 and scores["mask_map"] == 0.0
    f = render_figures(FigureConfig(size=64), range(4), seed=2)
    truth = [f.target(i) for i in range(4)]
    exact = [{"keypoints": t["keypoints"], "scores": torch.ones(len(t["boxes"]))} for t in truth]
    assert keypoint_map(exact, truth) == {"map": 1.0, "map_50": 1.0, "map_75": 1.0}
    off = [{**e, "keypoints": e["keypoints"] + torch.tensor([6.0, 0.0, 0.0])} for e in exact]   # 6 px to the right
    far = keypoint_map(off, truth)
    assert 0 <= far["map"] < 0.5 and far["map_50"] <= 1.0
    with pytest.raises(ValueError, match="sigmas must be one positive number or one per joint"):
        keypoint_map(exact, truth, sigmas=[0.1, 0.2])


def test_recipes_train_save_and_load(tmp_path, capsys):
    import dataclasses

    from course_utils.training.checkpoints import save_trained
    from course_utils.training.recipes.instance import (
        KEYPOINT_RCNN,
        MASK_RCNN,
        MaskRCNNRecipe,
        build_mask_rcnn,
        mask_rcnn_path,
        train_keypoint_rcnn,
        train_mask_rcnn,
        trained_mask_rcnn,
    )

    assert set(MASK_RCNN) == set(KEYPOINT_RCNN) == {"ci", "cpu", "gpu"}
    tiny = dict(size=64, width=8, rep=32, steps=2, pool=8, batch=2, warmup=0)
    model, history = train_mask_rcnn(dataclasses.replace(MASK_RCNN["ci"], mask_layers=(8,), **tiny), "ci",
                                     pieces=STUDENT, progress=False)
    assert len(history.loss) == 2 and "loss_mask" in history.parts and model.roi_heads.pieces is STUDENT
    _, history = train_keypoint_rcnn(dataclasses.replace(KEYPOINT_RCNN["ci"], keypoint_layers=(8,), **tiny), "ci",
                                     progress=False)
    assert "loss_keypoint" in history.parts
    with pytest.raises(FileNotFoundError, match="run lab 07"):
        trained_mask_rcnn("ci", folder=tmp_path, train_if_missing=False)
    recipe = MASK_RCNN["ci"]
    saved = build_mask_rcnn(recipe, 4)
    save_trained(saved, recipe, mask_rcnn_path("ci", tmp_path))
    assert mask_rcnn_path("ci", tmp_path) == tmp_path / "07_mask_rcnn_ci.pt"
    loaded = trained_mask_rcnn("ci", folder=tmp_path)
    assert "loaded from" in capsys.readouterr().out and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(TypeError, match="MaskRCNNRecipe"):
        build_mask_rcnn(KEYPOINT_RCNN["ci"], 4)
    assert isinstance(MASK_RCNN["cpu"], MaskRCNNRecipe)
