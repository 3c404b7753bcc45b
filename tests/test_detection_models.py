"""Lab-05 models: one training step each, output shapes, determinism, bad input."""

import pytest
import torch

from course_utils.data import SceneConfig, render_scenes
from course_utils.models.detection import (
    RCNN,
    FastRCNN,
    detect,
    detection_loss,
    proposal_targets,
    small_faster_rcnn,
)


@pytest.fixture(scope="module")
def scenes():
    s = render_scenes(SceneConfig(size=64, max_things=2), range(2), seed=3)
    return s.images, [s.target(i) for i in range(2)]


@pytest.mark.parametrize("kwargs", [{}, {"out_stride": 8}, {"out_channels": 16, "sampling_ratio": 1},
                                    {"fpn": True, "anchor_sizes": (8, 16, 32)}])
def test_faster_rcnn_trains_and_detects(scenes, kwargs):
    images, targets = scenes
    torch.manual_seed(0)
    model = small_faster_rcnn(4, 64, width=8, depth=1, representation=32, **kwargs)
    model.train()
    losses = model(list(images), targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    model.eval()
    with torch.no_grad():
        out = model(list(images))
    assert len(out) == 2
    for d in out:
        assert d["boxes"].shape[1] == 4 and d["boxes"].dtype == torch.float32
        assert d["scores"].shape == d["labels"].shape == (len(d["boxes"]),) and d["labels"].dtype == torch.int64
        assert (d["boxes"] >= 0).all() and (d["boxes"] <= 64).all()
    assert model.transform.min_size == (64,) and model.transform.max_size == 64   # no resizing to 800 px


def test_faster_rcnn_errors():
    with pytest.raises(ValueError, match="multiple of 3"):
        small_faster_rcnn(4, 64, fpn=True, anchor_sizes=(8, 16))
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        small_faster_rcnn(1, 64)


@pytest.mark.parametrize("model_class", [RCNN, FastRCNN])
def test_rcnn_and_fast_rcnn_train_step(scenes, model_class):
    images, targets = scenes
    torch.manual_seed(0)
    model = model_class(4, width=8, hidden=32)
    g = torch.Generator().manual_seed(1)
    proposals = [torch.cat([t["boxes"], t["boxes"] + torch.randn(len(t["boxes"]), 4, generator=g) * 4,
                            torch.tensor([[0.0, 0.0, 20.0, 20.0], [30.0, 30.0, 60.0, 50.0]])]).clamp(0, 64)
                 for t in targets]
    proposals = [torch.cat([p[:, :2], torch.maximum(p[:, 2:], p[:, :2] + 1)], 1) for p in proposals]
    logits, deltas = model(images, proposals)
    k = sum(len(p) for p in proposals)
    assert logits.shape == (k, 4) and deltas.shape == (k, 16)
    labels, codes = proposal_targets(proposals, targets)
    assert labels.shape == (k,) and codes.shape == (k, 4) and (labels[:len(targets[0]["boxes"])] > 0).all()
    losses = detection_loss(logits, deltas, labels, codes)
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="one K_i x 4 tensor per image"):
        model(images, proposals[:1])


def test_detect_helper_keeps_the_mode(scenes):
    images, _ = scenes
    model = small_faster_rcnn(4, 64, width=8, depth=1, representation=32)
    model.train()
    out = detect(model, images, batch_size=1)
    assert len(out) == 2 and set(out[0]) == {"boxes", "scores", "labels"} and model.training
