import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.data import OFFLINE_IMAGES, VOCFolder, load_image


def save_palette_png(array, path):
    """A palette PNG like VOC's (a full 256-colour palette, so PIL keeps the indices as they are)."""
    png = Image.fromarray(array, mode="P")
    png.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    png.save(path)


def write_voc(root, ids=("a", "b")):
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "SegmentationObject").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    for k, name in enumerate(ids):
        Image.fromarray(np.full((12, 16, 3), 40 * k, np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        cls = np.zeros((12, 16), np.uint8)
        cls[2:6, 3:9] = 15          # a person
        cls[8:11, 10:15] = 7        # a car
        cls[0, :] = 255             # border, ignored
        obj = np.zeros((12, 16), np.uint8)
        obj[2:6, 3:9], obj[8:11, 10:15], obj[0, :] = 1, 2, 255
        save_palette_png(cls, root / "SegmentationClass" / f"{name}.png")
        save_palette_png(obj, root / "SegmentationObject" / f"{name}.png")


def test_voc_folder_reads_the_standard_layout(tmp_path):
    write_voc(tmp_path)
    ds = VOCFolder(tmp_path, "train")
    assert len(ds) == 2
    image, target = ds[1]
    assert image.shape == (3, 12, 16) and image.dtype == torch.float32
    assert target["semantic"].dtype == torch.int64 and target["semantic"][0, 0] == 255
    assert target["labels"].tolist() == [15, 7]
    assert target["boxes"].tolist() == [[3, 2, 9, 6], [10, 8, 15, 11]]
    assert target["masks"].shape == (2, 12, 16) and target["masks"][0].sum() == 24


def test_voc_folder_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        VOCFolder(tmp_path / "missing")
    write_voc(tmp_path)
    with pytest.raises(FileNotFoundError, match="splits found: \\['train'\\]"):
        VOCFolder(tmp_path, "val")
    bad = np.full((12, 16), 42, np.uint8)
    save_palette_png(bad, tmp_path / "SegmentationClass" / "a.png")
    with pytest.raises(ValueError, match="mask has class 42"):
        VOCFolder(tmp_path)[0]


@pytest.mark.parametrize("name", ["coins", "astronaut", "horse", "coffee"])
def test_load_image(name):
    image = load_image(name)
    assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] in (1, 3)
    assert 0 <= image.min() and image.max() <= 1 and image.max() > 0.5
    rgb = load_image(name, rgb=True, size=40)
    assert rgb.shape[0] == 3 and min(rgb.shape[1:]) == 40


def test_load_image_rejects_online_only_images():
    assert "eagle" not in OFFLINE_IMAGES
    with pytest.raises(ValueError, match="unknown or online-only image 'eagle'"):
        load_image("eagle")
