"""A COCO-format detection dataset: an images folder plus an ``instances`` JSON, read with pycocotools.

    dataset = CocoDetection("data/val2017", "data/annotations/instances_val2017.json")
    image, target = dataset[0]

Items follow torchvision's detection convention: ``image`` ``3 x H x W`` float32 in [0, 1] and
``target`` with ``boxes`` ``N x 4`` float32 XYXY (from COCO's XYWH), ``labels`` ``N`` int64,
``image_id`` int64, ``area`` ``N`` float32, ``iscrowd`` ``N`` int64 and, with ``masks=True``,
``masks`` ``N x H x W`` uint8. Boxes with no width or height are dropped, as torchvision's COCO
reference does. ``contiguous_labels=True`` maps the category ids (COCO's run 1..90 with gaps) to
``1..K`` in id order; ``dataset.categories`` lists the names by label, ``"background"`` first.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


class CocoDetection(Dataset):
    """Item ``i`` is ``(image, target)`` of the ``i``-th image (by image id) of a COCO JSON."""

    def __init__(self, root: str | Path, ann_file: str | Path, masks: bool = False, contiguous_labels: bool = True,
                 skip_empty: bool = False, transforms: Callable | None = None):
        from pycocotools.coco import COCO

        self.root, ann_file = Path(root), Path(ann_file)
        if not self.root.is_dir():
            raise FileNotFoundError(f"images folder {self.root} does not exist")
        if not ann_file.is_file():
            raise FileNotFoundError(f"annotation file {ann_file} does not exist")
        with contextlib.redirect_stdout(io.StringIO()):          # pycocotools prints progress
            self.coco = COCO(str(ann_file))
        cat_ids = sorted(self.coco.getCatIds())
        self.label_of = {c: (i + 1 if contiguous_labels else c) for i, c in enumerate(cat_ids)}
        self.categories = ("background", *(self.coco.cats[c]["name"] for c in cat_ids))
        self.ids = sorted(self.coco.getImgIds())
        if skip_empty:
            self.ids = [i for i in self.ids if self.coco.getAnnIds(imgIds=i, iscrowd=None)]
        self.masks, self.transforms = masks, transforms

    def __len__(self) -> int:
        return len(self.ids)

    def load_image(self, image_id: int) -> torch.Tensor:
        """``3 x H x W`` float32 in [0, 1] (grey and RGBA images are converted to RGB)."""
        from PIL import Image

        info = self.coco.imgs[image_id]
        path = self.root / info["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"image {path} (id {image_id}) listed in the annotations is missing")
        with Image.open(path) as im:
            array = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    def load_target(self, image_id: int) -> dict[str, torch.Tensor]:
        info = self.coco.imgs[image_id]
        anns = [a for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=None))
                if a["bbox"][2] > 0 and a["bbox"][3] > 0]
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, info["width"])
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, info["height"])
        target = {
            "boxes": boxes,
            "labels": torch.tensor([self.label_of[a["category_id"]] for a in anns], dtype=torch.int64),
            "image_id": torch.tensor(image_id, dtype=torch.int64),
            "area": torch.tensor([float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in anns],
                                 dtype=torch.float32),
            "iscrowd": torch.tensor([int(a.get("iscrowd", 0)) for a in anns], dtype=torch.int64),
        }
        if self.masks:
            shape = (len(anns), info["height"], info["width"])
            target["masks"] = torch.from_numpy(np.stack([self.coco.annToMask(a) for a in anns])) if anns \
                else torch.zeros(shape, dtype=torch.uint8)
        return target

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} images")
        image_id = self.ids[i]
        image, target = self.load_image(image_id), self.load_target(image_id)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
