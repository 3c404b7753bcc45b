"""Data for the labs: synthetic scenes, skimage's sample images, real-data folders."""

from course_utils.data.datasets import SceneDataset, collate_detection, collate_segmentation
from course_utils.data.folders import VOCFolder
from course_utils.data.images import OFFLINE_IMAGES, load_image
from course_utils.data.scenes import (
    SceneConfig,
    Scenes,
    render_scenes,
    three_intensity_image,
)

__all__ = [
    "OFFLINE_IMAGES", "SceneConfig", "SceneDataset", "Scenes", "VOCFolder", "collate_detection",
    "collate_segmentation", "load_image", "render_scenes", "three_intensity_image",
]
