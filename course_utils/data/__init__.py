"""Data for the labs: synthetic scenes, skimage's sample images, real-data folders, and batches.

- ``scenes``: synthetic scenes (stuff and things) with every kind of label, rendered on any device;
- ``figures``: synthetic stick figures with named joints (keypoints) on the same backgrounds (lab 07);
- ``datasets``: scenes as a torch ``Dataset`` (torchvision's detection convention) and collate functions;
- ``batches``: :class:`SceneBatches` (batch ``step`` of scenes) for the training loop;
- ``yolo``: YOLO's grid targets of the scenes and :class:`YoloBatches` (lab 06);
- ``images``: skimage's sample images that load offline; ``folders``: VOC-style folders of real data;
  ``coco``: COCO-format detection data (an images folder and an instances JSON).
"""

from course_utils.data.batches import FigureBatches, SceneBatches, to_device
from course_utils.data.coco import CocoDetection
from course_utils.data.datasets import SceneDataset, collate_detection, collate_segmentation
from course_utils.data.figures import FigureConfig, Figures, render_figures
from course_utils.data.folders import VOCFolder
from course_utils.data.images import OFFLINE_IMAGES, load_image
from course_utils.data.scenes import (
    SceneConfig,
    Scenes,
    render_scenes,
    three_intensity_image,
)
from course_utils.data.yolo import YoloBatches, grid_targets

__all__ = [
    "CocoDetection", "FigureBatches", "FigureConfig", "Figures", "OFFLINE_IMAGES", "SceneBatches", "SceneConfig",
    "SceneDataset", "Scenes", "VOCFolder", "YoloBatches", "collate_detection", "collate_segmentation", "grid_targets",
    "load_image", "render_figures", "render_scenes", "three_intensity_image", "to_device",
]
