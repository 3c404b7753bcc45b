"""Lab 08 (panoptic segmentation): the merge reference against a transcription of detectron2's
``combine_semantic_and_instance_outputs``, the scenes' ground truth through the merge and the metric,
and the merge's input checks (its probes, correct implementations that differ: tests/test_probes.py)."""

from __future__ import annotations

import pytest
import torch

from course_utils.data.scenes import SceneConfig, render_scenes
from course_utils.evaluation.panoptic import VOID, panoptic_quality
from course_utils.exercises import lab_exercises
from course_utils.ops.panoptic import merge_panoptic, scaled_stuff_area


def test_the_lab_declares_its_exercises_in_order():
    assert [e.id for e in lab_exercises("08")] == ["08.merge", "08.panoptic_quality"]
    assert [e.function for e in lab_exercises("08")] == ["merge", "panoptic_quality"]


# ---- the merge against detectron2 ------------------------------------------------------------
def detectron2_combine(semantic, masks, scores, classes, overlap_threshold, stuff_area_thresh, score_thresh):
    """detectron2's combine_semantic_and_instance_outputs, line by line (semantic class 0 = all things)."""
    panoptic_seg = torch.zeros_like(semantic, dtype=torch.int32)
    sorted_inds = torch.argsort(-scores)
    current_segment_id = 0
    segments_info = []
    instance_masks = masks.to(dtype=torch.bool)
    for inst_id in sorted_inds:
        score = scores[inst_id].item()
        if score < score_thresh:
            break
        mask = instance_masks[inst_id]
        mask_area = mask.sum().item()
        if mask_area == 0:
            continue
        intersect = (mask > 0) & (panoptic_seg > 0)
        intersect_area = intersect.sum().item()
        if intersect_area * 1.0 / mask_area > overlap_threshold:
            continue
        if intersect_area > 0:
            mask = mask & (panoptic_seg == 0)
        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append({"id": current_segment_id, "isthing": True, "category_id": classes[inst_id].item()})
    for semantic_label in torch.unique(semantic).cpu().tolist():
        if semantic_label == 0:
            continue
        mask = (semantic == semantic_label) & (panoptic_seg == 0)
        mask_area = mask.sum().item()
        if mask_area < stuff_area_thresh:
            continue
        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append({"id": current_segment_id, "isthing": False, "category_id": semantic_label})
    return panoptic_seg, segments_info


def via_detectron2(semantic, masks, scores, labels, things, stuffs, overlap, area, score_thresh):
    """Our inputs in detectron2's conventions (semantic: 0 = things, stuff k -> k + 1), its output in ours."""
    d2_semantic = torch.zeros_like(semantic)
    for k, c in enumerate(stuffs):
        d2_semantic[semantic == c] = k + 1
    seg, info = detectron2_combine(d2_semantic, masks, scores, labels, overlap, area, score_thresh)
    out = torch.zeros(*semantic.shape, 2, dtype=torch.int64)
    out[..., 0] = VOID
    for s in info:
        where = seg == s["id"]
        out[where] = torch.tensor([s["category_id"], s["id"]]) if s["isthing"] else \
            torch.tensor([stuffs[s["category_id"] - 1], 0])
    return out


def test_the_merge_is_detectron2s_on_random_predictions():
    g = torch.Generator().manual_seed(8)
    config = SceneConfig(size=48, min_visible=8)
    scenes = render_scenes(config, range(12), seed=3)
    things, stuffs = config.thing_ids, tuple(range(len(config.stuff)))
    for i in range(len(scenes)):
        target = scenes.target(i)
        semantic = scenes.semantic[i].clone()
        noise = torch.rand(semantic.shape, generator=g) < 0.05
        semantic[noise] = torch.randint(0, config.num_classes, (int(noise.sum()),), generator=g)
        gt = target["masks"].bool()
        shifted = torch.roll(gt, shifts=(int(torch.randint(-3, 4, (1,), generator=g)), 2), dims=(1, 2))
        extra = torch.zeros(3, 48, 48, dtype=torch.bool)
        for k in range(3):
            y, x = torch.randint(0, 40, (2,), generator=g).tolist()
            extra[k, y:y + 8, x:x + 10] = True
        masks = torch.cat([gt, shifted, extra])
        n = len(masks)
        # distinct scores: detectron2's order is unambiguous
        scores = torch.randperm(n, generator=g).float() / n + 0.01
        labels = torch.tensor(things)[torch.randint(0, len(things), (n,), generator=g)]
        for overlap, area, thresh in ((0.5, scaled_stuff_area(48, 48), 0.5), (0.25, 30, 0.3), (0.75, 0, 0.1)):
            ours = merge_panoptic(semantic, masks, scores, labels, things, thresh, overlap, area)
            theirs = via_detectron2(semantic, masks, scores, labels, things, stuffs, overlap, area, thresh)
            assert torch.equal(ours, theirs), (i, overlap, area, thresh)


def test_the_scenes_ground_truth_goes_through_the_merge_unchanged_and_scores_pq_one():
    config = SceneConfig(size=64)
    scenes = render_scenes(config, range(6), seed=1)
    things, stuffs = config.thing_ids, tuple(range(len(config.stuff)))
    maps = []
    for i in range(len(scenes)):
        target = scenes.target(i)
        labels = torch.tensor(things)[target["labels"] - 1]           # detection label l -> category thing_ids[l - 1]
        scores = torch.ones(len(labels))                              # equal scores: input order, ids 1..n as drawn
        merged = merge_panoptic(target["semantic"], target["masks"], scores, labels, things, stuff_area=0)
        assert torch.equal(merged, target["panoptic"])
        maps.append(merge_panoptic(target["semantic"], target["masks"], scores, labels, things))
    result = panoptic_quality(torch.stack(maps), scenes.panoptic, things, stuffs)
    assert result["pq_th"] == 1.0          # the default area limit may void small stuff regions, never things


def test_the_stuff_area_limit_scales_by_area():
    assert scaled_stuff_area(480, 640) == 4096.0
    assert scaled_stuff_area(128, 128) == pytest.approx(218.45, abs=0.01)
    assert scaled_stuff_area(64, 128) == pytest.approx(scaled_stuff_area(128, 128) / 2)
    with pytest.raises(ValueError, match="height"):
        scaled_stuff_area(0, 10)


def test_the_default_limit_removes_small_stuff():
    semantic = torch.zeros(128, 128, dtype=torch.int64)
    semantic[:, :2] = 1                 # 256 pixels: kept (>= 218.45)
    semantic[:1, 2:3] = 2               # 1 pixel: void
    out = merge_panoptic(semantic, torch.zeros(0, 128, 128, dtype=torch.bool), torch.zeros(0),
                         torch.zeros(0, dtype=torch.int64), (3, 4))
    assert (out[..., 0] == 1).sum() == 256 and out[0, 2, 0] == VOID


def _inputs(n=2, h=6, w=6):
    return (torch.zeros(h, w, dtype=torch.int64), torch.ones(n, h, w, dtype=torch.bool), torch.rand(n),
            torch.full((n,), 3), (3, 4))


@pytest.mark.parametrize("change, error, match", [
    ({1: torch.ones(2, 6, 6)}, TypeError, "binary.*> 0.5"),
    ({1: torch.ones(2, 1, 6, 6, dtype=torch.bool)}, ValueError, "masks must be 3-D"),
    ({1: torch.ones(2, 5, 6, dtype=torch.bool)}, ValueError, "H x W"),
    ({0: torch.zeros(6, 6)}, TypeError, "integer tensor"),
    ({0: torch.full((6, 6), -1)}, ValueError, ">= 0"),
    ({2: torch.rand(3)}, ValueError, "one score and one label per mask"),
    ({2: torch.ones(2, dtype=torch.int64)}, TypeError, "floating-point"),
    ({3: torch.tensor([1, 2])}, ValueError, "thing category ids \\[3, 4\\].*not a detector"),
    ({4: (3, 4.5)}, TypeError, "int category ids"),
    ({"overlap_threshold": 1.5}, ValueError, "overlap_threshold must be <= 1"),
    ({"stuff_area": -1}, ValueError, "stuff_area must be >= 0"),
    ({"score_threshold": float("nan")}, ValueError, "finite"),
    ({2: torch.tensor([0.9, float("nan")])}, ValueError, "scores must be finite"),
])
def test_bad_input_to_the_merge_is_refused_clearly(change, error, match):
    args = list(_inputs())
    kwargs = {}
    for key, value in change.items():
        if isinstance(key, int):
            args[key] = value
        else:
            kwargs[key] = value
    with pytest.raises(error, match=match):
        merge_panoptic(*args, **kwargs)

