"""Stick-figure scenes (lab 07's keypoint data): deterministic by (seed, index), valid targets, bad input."""

import pytest
import torch

from course_utils.data import FigureBatches, FigureConfig, SceneConfig, render_figures
from course_utils.data.figures import JOINTS, SKELETON


@pytest.fixture(scope="module")
def batch():
    return render_figures(FigureConfig(size=64), range(12), seed=4)


def test_deterministic_by_seed_and_index(batch):
    again = render_figures(FigureConfig(size=64), [7, 3], seed=4)
    assert torch.equal(again.images[0], batch.images[7]) and torch.equal(again.images[1], batch.images[3])
    assert torch.equal(again.keypoints[0], batch.keypoints[7])
    other = render_figures(FigureConfig(size=64), [7], seed=5)
    assert not torch.equal(other.images[0], batch.images[7])
    b = FigureBatches(FigureConfig(size=64), 3, seed=4, pool=12)
    images, targets = b(5)
    for image, target, i in zip(images, targets, b.indices(5)):
        assert torch.equal(image, batch.images[i]) and torch.equal(target["keypoints"], batch.target(i)["keypoints"])


def test_targets_are_valid(batch):
    assert len(JOINTS) == 9 and all(0 <= a < 9 and 0 <= b < 9 for a, b in SKELETON)
    counts = []
    for i in range(len(batch)):
        t = batch.target(i)
        n = len(t["boxes"])
        counts.append(n)
        assert 1 <= n <= 3 and t["labels"].tolist() == [1] * n
        assert t["masks"].shape == (n, 64, 64) and t["masks"].dtype == torch.uint8
        assert (t["masks"].flatten(1).sum(1) >= 30).all()
        assert t["keypoints"].shape == (n, 9, 3) and t["keypoints"].dtype == torch.float32
        v = t["keypoints"][..., 2]
        assert set(v.unique().tolist()) <= {0.0, 1.0, 2.0}
        xy = t["keypoints"][..., :2]
        assert (xy[v == 0] == 0).all()
        inside = xy[v > 0]
        assert ((inside >= 0) & (inside < 64)).all()
        for k in range(n):                      # a visible joint lies on its figure's visible pixels, in its box
            for x, y in t["keypoints"][k][v[k] == 2, :2].long().tolist():
                assert t["masks"][k, y, x] == 1
                assert t["boxes"][k, 0] <= x < t["boxes"][k, 2] and t["boxes"][k, 1] <= y < t["boxes"][k, 3]
            for x, y in t["keypoints"][k][v[k] == 1, :2].long().tolist():      # hidden: a later figure is there
                assert batch.instances[i, y, x] > k + 1
    assert len(set(counts)) > 1
    assert (batch.keypoints[..., 2] == 1).any()                  # some joints are hidden by a figure in front
    assert 0.0 <= batch.images.min() and batch.images.max() <= 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="max_figures"):
        FigureConfig(min_figures=2, max_figures=1)
    with pytest.raises(ValueError, match="min_height"):
        FigureConfig(min_height=0.9, max_height=0.5)
    with pytest.raises(ValueError, match="stuff"):
        FigureConfig(stuff=("lava",))
    with pytest.raises(TypeError, match="FigureConfig"):
        render_figures(SceneConfig(), range(2))
    with pytest.raises(ValueError, match=">= 0"):
        render_figures(FigureConfig(), [-1])
    with pytest.raises(TypeError, match="FigureConfig"):
        FigureBatches(SceneConfig(), 2)
