"""CocoDetection on a tiny COCO JSON and images written into tmp_path."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.data.coco import CocoDetection


@pytest.fixture
def tiny_coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(images / "b.png")    # grey
    Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(images / "c.png")
    square = [[2.0, 3.0, 12.0, 3.0, 12.0, 9.0, 2.0, 9.0]]
    data = {
        "images": [{"id": 7, "file_name": "a.png", "height": 20, "width": 30},
                   {"id": 3, "file_name": "b.png", "height": 16, "width": 16},
                   {"id": 9, "file_name": "c.png", "height": 10, "width": 12}],
        "categories": [{"id": 5, "name": "cat"}, {"id": 90, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 90, "bbox": [2.0, 3.0, 10.0, 6.0], "area": 60.0,
             "iscrowd": 0, "segmentation": square},
            {"id": 2, "image_id": 7, "category_id": 5, "bbox": [20.0, 10.0, 15.0, 5.0], "area": 75.0,
             "iscrowd": 0, "segmentation": [[20.0, 10.0, 30.0, 10.0, 30.0, 15.0]]},
            {"id": 3, "image_id": 7, "category_id": 5, "bbox": [4.0, 4.0, 0.0, 3.0], "area": 0.0,
             "iscrowd": 0, "segmentation": [[4.0, 4.0, 4.0, 7.0, 4.0, 5.0]]},
            {"id": 4, "image_id": 3, "category_id": 5, "bbox": [1.0, 1.0, 4.0, 4.0], "area": 16.0,
             "iscrowd": 1, "segmentation": [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]]},
        ],
    }
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps(data))
    return images, ann


def test_items_follow_torchvision_convention(tiny_coco):
    images, ann = tiny_coco
    ds = CocoDetection(images, ann, masks=True)
    assert len(ds) == 3 and ds.categories == ("background", "cat", "dog")
    image, target = ds[1]                                       # ids sorted: 3, 7, 9 -> id 7
    assert image.shape == (3, 20, 30) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert int(target["image_id"]) == 7
    # xywh -> xyxy, clipped to the image; the zero-width box is dropped
    assert torch.equal(target["boxes"], torch.tensor([[2.0, 3.0, 12.0, 9.0], [20.0, 10.0, 30.0, 15.0]]))
    assert target["labels"].tolist() == [2, 1] and target["labels"].dtype == torch.int64
    assert target["masks"].shape == (2, 20, 30) and target["masks"].dtype == torch.uint8
    assert target["masks"][0].sum() > 0
    grey, crowd = ds[0]
    assert grey.shape == (3, 16, 16) and crowd["iscrowd"].tolist() == [1]
    empty = ds[2][1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,) and empty["masks"].shape == (0, 10, 12)


def test_options_and_errors(tiny_coco, tmp_path):
    images, ann = tiny_coco
    raw = CocoDetection(images, ann, contiguous_labels=False, skip_empty=True)
    assert len(raw) == 2 and raw[1][1]["labels"].tolist() == [90, 5]
    flipped = CocoDetection(images, ann, transforms=lambda im, t: (im.flip(-1), t))
    assert torch.equal(flipped[1][0], CocoDetection(images, ann)[1][0].flip(-1))
    with pytest.raises(FileNotFoundError, match="annotation file"):
        CocoDetection(images, tmp_path / "missing.json")
    with pytest.raises(IndexError):
        raw[5]
    (images / "c.png").unlink()
    with pytest.raises(FileNotFoundError, match="c.png"):
        CocoDetection(images, ann)[2]


def test_masks_from_polygons_and_rle(tmp_path):
    """COCO's three encodings of a mask give the same pixels: polygons, uncompressed RLE, compressed RLE."""
    from pycocotools import mask as mask_api

    from course_utils.data.coco import segmentation_mask

    truth = np.zeros((6, 5), dtype=np.uint8)
    truth[1:4, 2:5] = 1                                              # rows 1-3, columns 2-4
    truth[5, 0] = 1
    runs, last, count = [], 0, 0                                     # column-major runs, starting with 0s
    for v in truth.flatten(order="F"):
        if v != last:
            runs.append(count)
            last, count = v, 0
        count += 1
    runs.append(count)
    uncompressed = {"counts": runs, "size": [6, 5]}
    compressed = mask_api.encode(np.asfortranarray(truth))
    compressed = {"size": compressed["size"], "counts": compressed["counts"].decode()}   # as JSON stores it
    assert np.array_equal(segmentation_mask(uncompressed, 6, 5), truth)
    assert np.array_equal(segmentation_mask(compressed, 6, 5), truth)
    polygons = [[2.0, 1.0, 5.0, 1.0, 5.0, 4.0, 2.0, 4.0], [0.0, 5.0, 1.0, 5.0, 1.0, 6.0, 0.0, 6.0]]
    assert np.array_equal(segmentation_mask(polygons, 6, 5),
                          truth)                             # two polygons, pixel-edge coordinates
    with pytest.raises(ValueError, match="at least 3 points"):
        segmentation_mask([[1.0, 2.0, 3.0, 4.0]], 6, 5)
    with pytest.raises(ValueError, match="RLE segmentation of size"):
        segmentation_mask({"counts": runs, "size": [5, 6]}, 6, 5)
    with pytest.raises(ValueError, match="polygons .* or an RLE dict"):
        segmentation_mask("1 2 3", 6, 5)

    # the dataset reads all three, and keypoints
    Image.fromarray(np.zeros((6, 5, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    kps = [2.5, 1.5, 2, 4.0, 3.0, 1, 0, 0, 0]
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 5.0, 6.0], "area": 10.0,
             "iscrowd": int(i == 1), "segmentation": seg, "keypoints": kps, "num_keypoints": 2}
            for i, seg in enumerate([polygons, uncompressed, compressed])]
    data = {"images": [{"id": 1, "file_name": "a.png", "height": 6, "width": 5}], "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b", "c"], "skeleton": [[1, 2]]}]}
    (tmp_path / "k.json").write_text(json.dumps(data))
    _, target = CocoDetection(tmp_path, tmp_path / "k.json", masks=True, keypoints=True)[0]
    assert all(np.array_equal(m.numpy(), truth) for m in target["masks"])
    assert target["keypoints"].shape == (3, 3, 3) and target["keypoints"].dtype == torch.float32
    assert target["keypoints"][0].tolist() == [[2.5, 1.5, 2.0], [4.0, 3.0, 1.0], [0.0, 0.0, 0.0]]
    anns[0]["keypoints"] = kps[:6]
    (tmp_path / "k.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="expected 9"):
        CocoDetection(tmp_path, tmp_path / "k.json", keypoints=True)[0]


def test_keypoints_need_named_keypoints(tiny_coco):
    images, ann = tiny_coco
    with pytest.raises(ValueError, match="name their keypoints"):
        CocoDetection(images, ann, keypoints=True)


def test_pretrained_weights_only_from_the_cache(tmp_path, monkeypatch, capsys):
    """Never a download: with an empty torch cache the function says so and returns None; with the file
    in the cache it loads it."""
    import urllib.request

    import torch.hub

    from course_utils.models.pretrained import (
        cached_weights_path,
        coco_mask_rcnn_weights,
    )

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert coco_mask_rcnn_weights() is None
    out = capsys.readouterr().out
    assert "not in the torch cache" in out and str(tmp_path / "torch") in out and "COCO_V1" in out
    assert list(tmp_path.iterdir()) == []                            # nothing written either
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    path = cached_weights_path(MaskRCNN_ResNet50_FPN_Weights.COCO_V1)
    path.parent.mkdir(parents=True)
    torch.save({"w": torch.ones(2)}, path)                           # a stand-in for the cached file
    assert torch.equal(coco_mask_rcnn_weights()["w"], torch.ones(2))
    with pytest.raises(TypeError, match="weights enum"):
        cached_weights_path("COCO_V1")
