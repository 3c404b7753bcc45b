"""Real data in the usual folder layout (Pascal VOC), for users who downloaded it themselves.

Layout (a VOC2012 folder, or any folder built the same way)::

    root/JPEGImages/<id>.jpg
    root/SegmentationClass/<id>.png     palette PNG: class index per pixel, 255 = border (ignored)
    root/SegmentationObject/<id>.png    optional: instance index per pixel, 0 = none, 255 = border
    root/ImageSets/Segmentation/<split>.txt   one <id> per line

Items are ``(image, target)`` like :class:`~course_utils.data.SceneDataset`: ``semantic`` always,
and ``boxes`` / ``labels`` / ``masks`` when instance PNGs exist. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
IGNORE_INDEX = 255


class VOCFolder(Dataset):
    """Pascal-VOC-style segmentation folder (see the module docstring)."""

    def __init__(self, root: str | Path, split: str = "train", classes: tuple[str, ...] = VOC_CLASSES):
        self.root, self.classes = Path(root), classes
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such folder: {self.root} (expected a VOC-style folder with "
                                    "JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/)")
        listing = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            found = sorted(p.stem for p in listing.parent.glob("*.txt")) if listing.parent.is_dir() else []
            raise FileNotFoundError(f"no split file {listing}; splits found: {found or 'none'}")
        self.ids = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        for sub in ("JPEGImages", "SegmentationClass"):
            if not (self.root / sub).is_dir():
                raise FileNotFoundError(f"missing folder {self.root / sub}")

    def __len__(self) -> int:
        return len(self.ids)

    def _image_path(self, image_id: str) -> Path:
        for ext in (".jpg", ".jpeg", ".png"):
            path = self.root / "JPEGImages" / f"{image_id}{ext}"
            if path.is_file():
                return path
        raise FileNotFoundError(f"no image for id {image_id!r} in {self.root / 'JPEGImages'}")

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image_id = self.ids[i]
        rgb = np.asarray(Image.open(self._image_path(image_id)).convert("RGB"), dtype=np.float32) / 255.0
        image = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
        semantic = torch.from_numpy(np.asarray(Image.open(self.root / "SegmentationClass" / f"{image_id}.png"),
                                               dtype=np.int64).copy())
        if semantic.shape != image.shape[1:]:
            raise ValueError(f"{image_id}: mask size {tuple(semantic.shape)} != image size {tuple(image.shape[1:])}")
        bad = (semantic >= len(self.classes)) & (semantic != IGNORE_INDEX)
        if bad.any():
            raise ValueError(f"{image_id}: mask has class {semantic[bad][0].item()}, expected "
                             f"0..{len(self.classes) - 1} or {IGNORE_INDEX}")
        target = {"semantic": semantic, "image_id": torch.tensor(i)}
        object_png = self.root / "SegmentationObject" / f"{image_id}.png"
        if object_png.is_file():
            target.update(_instances(np.asarray(Image.open(object_png), dtype=np.int64), semantic))
        return image, target


def _instances(objects: np.ndarray, semantic: torch.Tensor) -> dict[str, torch.Tensor]:
    from torchvision.ops import masks_to_boxes

    objects_t = torch.from_numpy(objects.copy())
    ids = [int(k) for k in torch.unique(objects_t) if 0 < k < IGNORE_INDEX]
    masks = torch.stack([objects_t == k for k in ids]) if ids else torch.zeros(0, *objects.shape, dtype=torch.bool)
    labels = torch.tensor([int(torch.mode(semantic[m]).values) for m in masks], dtype=torch.long)
    boxes = masks_to_boxes(masks).float() if ids else torch.zeros(0, 4)
    boxes[:, 2:] += 1.0
    return {"boxes": boxes, "labels": labels, "masks": masks.to(torch.uint8)}
