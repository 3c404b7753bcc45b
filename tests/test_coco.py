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
