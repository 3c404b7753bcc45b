import pytest
import torch
from torch.utils.data import DataLoader

from course_utils.data import (
    SceneConfig,
    SceneDataset,
    collate_detection,
    collate_segmentation,
    render_scenes,
    three_intensity_image,
)


def test_same_scene_whatever_the_batch():
    config = SceneConfig(size=48)
    together = render_scenes(config, range(6), seed=5)
    alone = render_scenes(config, [4], seed=5)
    assert torch.equal(together.images[4], alone.images[0])
    assert torch.equal(together.panoptic[4], alone.panoptic[0])
    other_seed = render_scenes(config, [4], seed=6)
    assert not torch.equal(alone.images[0], other_seed.images[0])


def test_labels_are_consistent():
    config = SceneConfig(size=64, max_things=5)
    scenes = render_scenes(config, range(16), seed=0)
    assert scenes.images.shape == (16, 3, 64, 64) and scenes.images.dtype == torch.float32
    assert 0 <= scenes.images.min() and scenes.images.max() <= 1
    assert scenes.semantic.max() < config.num_classes
    for i in range(16):
        target = scenes.target(i)
        n = target["labels"].numel()
        assert target["boxes"].shape == (n, 4) and target["boxes"].dtype == torch.float32
        assert target["labels"].dtype == torch.int64 and target["masks"].dtype == torch.uint8
        assert target["masks"].shape == (n, 64, 64)
        assert ((target["labels"] >= 1) & (target["labels"] <= len(config.things))).all()
        masks = target["masks"].bool()
        assert (masks.sum(0) <= 1).all(), "visible masks must not overlap"
        for mask, label, box in zip(masks, target["labels"], target["boxes"]):
            assert mask.sum() >= config.min_visible
            # each instance's pixels carry its thing category in the semantic map
            assert (scenes.semantic[i][mask] == len(config.stuff) + label - 1).all()
            ys, xs = mask.nonzero(as_tuple=True)
            assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        things = scenes.semantic[i] >= len(config.stuff)
        assert torch.equal(things, masks.any(0)), "every thing pixel belongs to exactly one instance"
        assert torch.equal(target["panoptic"][..., 1] > 0, things)


def test_scene_statistics_cover_all_classes():
    config = SceneConfig(size=64)
    scenes = render_scenes(config, range(64), seed=1)
    assert set(scenes.semantic.unique().tolist()) == set(range(config.num_classes))
    counts = [int(scenes.instances[i].max()) for i in range(64)]
    assert min(counts) >= 0 and max(counts) <= config.max_things and sum(counts) > 64


def test_config_validation():
    with pytest.raises(ValueError, match="unknown stuff class 'lava'"):
        SceneConfig(stuff=("lava",))
    with pytest.raises(ValueError, match="unknown thing shape"):
        SceneConfig(things=("dragon",))
    with pytest.raises(ValueError, match="at least 8 x 8"):
        SceneConfig(size=4)
    with pytest.raises(ValueError, match="min_things <= max_things"):
        SceneConfig(min_things=3, max_things=2)
    with pytest.raises(ValueError, match="non-negative int"):
        render_scenes(SceneConfig(), [0], seed=-1)
    plain = SceneConfig(size=(32, 40), stuff=("background",), things=("ring", "cross"))
    scenes = render_scenes(plain, range(3))
    assert scenes.images.shape == (3, 3, 32, 40)
    assert plain.detection_classes == ("background", "ring", "cross")


def test_dataset_and_collate():
    ds = SceneDataset(10, SceneConfig(size=32), seed=0, chunk=4)
    image, target = ds[9]
    assert image.shape == (3, 32, 32) and int(target["image_id"]) == 9
    assert torch.equal(ds[9][0], ds.batch([9]).images[0])
    with pytest.raises(IndexError, match="out of range"):
        ds[10]
    with pytest.raises(ValueError, match="positive int"):
        SceneDataset(0)
    images, masks = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate_segmentation)))
    assert images.shape == (4, 3, 32, 32) and masks.shape == (4, 32, 32) and masks.dtype == torch.int64
    images, targets = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate_detection)))
    assert len(images) == 3 and {"boxes", "labels", "masks"} <= set(targets[0])


def test_detection_targets_train_a_torchvision_model():
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1), torch.nn.ReLU())
    backbone.out_channels = 8
    model = FasterRCNN(backbone, num_classes=4, min_size=64, max_size=64,
                       rpn_anchor_generator=AnchorGenerator(((8, 16, 32),), ((0.5, 1.0, 2.0),)))
    ds = SceneDataset(2, SceneConfig(size=64))
    images, targets = collate_detection([ds[0], ds[1]])
    losses = model(images, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
    assert set(losses) >= {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())


def test_three_intensity_image():
    image, labels = three_intensity_image(size=64, noise=0.0)
    assert image.shape == (1, 64, 64) and labels.shape == (64, 64)
    assert set(labels.unique().tolist()) == {0, 1, 2}
    levels = torch.tensor([0.1, 0.5, 0.9])
    assert torch.allclose(image[0], levels[labels])
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        three_intensity_image(size=3)
