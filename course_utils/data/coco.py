"""A COCO-format detection dataset: an images folder plus an ``instances`` JSON, read with pycocotools.

    dataset = CocoDetection("data/val2017", "data/annotations/instances_val2017.json")
    image, target = dataset[0]

Items follow torchvision's detection convention: ``image`` ``3 x H x W`` float32 in [0, 1] and
``target`` with ``boxes`` ``N x 4`` float32 XYXY (from COCO's XYWH), ``labels`` ``N`` int64,
``image_id`` int64, ``area`` ``N`` float32, ``iscrowd`` ``N`` int64; with ``masks=True``, ``masks``
``N x H x W`` uint8 (:func:`segmentation_mask`: COCO's polygons, uncompressed RLE, e.g. of crowds, and
compressed RLE, all through pycocotools' mask API); with ``keypoints=True``, ``keypoints`` ``N x K x 3``
float32 ``(x, y, v)`` (COCO's visibility: 0 not labelled, 1 labelled but hidden, 2 visible). Boxes
with no width or height are dropped, as torchvision's COCO reference does. ``contiguous_labels=True``
maps the category ids (COCO's run 1..90 with gaps) to ``1..K`` in id order; ``dataset.categories`` lists
the names by label, ``"background"`` first.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


def segmentation_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """An annotation's ``segmentation`` as an ``H x W`` uint8 mask, with pycocotools' mask API.

    COCO stores it as polygons (a list of ``[x1, y1, x2, y2, ...]`` lists, in pixel-edge coordinates;
    their union), as an uncompressed RLE (``{"counts": [run lengths...], "size": [H, W]}``, column-major
    runs starting with 0s; crowds use it) or as a compressed RLE (``counts`` a string). Polygons and
    uncompressed RLE go through ``frPyObjects``, the parts are merged, and ``decode`` gives the mask.
    """
    from pycocotools import mask as mask_api

    if isinstance(segmentation, list):
        if not segmentation or not all(isinstance(p, (list, tuple)) and len(p) >= 6 and len(p) % 2 == 0
                                       for p in segmentation):
            raise ValueError("a polygon segmentation must be a list of [x1, y1, x2, y2, ...] lists of at least "
                             f"3 points, got {str(segmentation)[:80]}")
        rle = mask_api.merge(mask_api.frPyObjects([[float(v) for v in p] for p in segmentation], height, width))
    elif isinstance(segmentation, dict) and set(segmentation) >= {"counts", "size"}:
        if list(segmentation["size"]) != [height, width]:
            raise ValueError(f"an RLE segmentation of size {segmentation['size']} in an image of {height} x {width}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_api.frPyObjects(segmentation, height, width)
        else:
            rle = {"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts}
    else:
        raise ValueError("a segmentation must be polygons (a list of coordinate lists) or an RLE dict with "
                         f"'counts' and 'size', got {type(segmentation).__name__}")
    return np.ascontiguousarray(mask_api.decode(rle), dtype=np.uint8)


class CocoDetection(Dataset):
    """Item ``i`` is ``(image, target)`` of the ``i``-th image (by image id) of a COCO JSON."""

    def __init__(self, root: str | Path, ann_file: str | Path, masks: bool = False, contiguous_labels: bool = True,
                 skip_empty: bool = False, transforms: Callable | None = None, keypoints: bool = False):
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
        self.masks, self.keypoints, self.transforms = masks, keypoints, transforms
        names = {tuple(self.coco.cats[c].get("keypoints", ())) for c in cat_ids} - {()}
        if keypoints and len(names) != 1:
            raise ValueError("keypoints=True needs the categories to name their keypoints (COCO's 'keypoints' list), "
                             f"all the same; found {sorted(names) or 'none'}")
        self.keypoint_names: tuple[str, ...] = names.pop() if len(names) == 1 else ()

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
            target["masks"] = torch.from_numpy(np.stack([
                segmentation_mask(a["segmentation"], info["height"], info["width"]) for a in anns])) if anns \
                else torch.zeros(shape, dtype=torch.uint8)
        if self.keypoints:
            k = len(self.keypoint_names)
            for a in anns:
                if len(a.get("keypoints", [])) != 3 * k:
                    raise ValueError(f"annotation {a.get('id')} of image {image_id} has {len(a.get('keypoints', []))} "
                                     f"keypoint values; expected {3 * k} (x, y, v for each of {k} keypoints)")
            target["keypoints"] = torch.tensor([a["keypoints"] for a in anns],
                                               dtype=torch.float32).reshape(len(anns), k, 3)
        return target

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} images")
        image_id = self.ids[i]
        image, target = self.load_image(image_id), self.load_target(image_id)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
