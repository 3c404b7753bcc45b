"""Detectors for labs 05 and 06: a small torchvision Faster R-CNN, tiny R-CNN / Fast R-CNN for comparison,
a tiny YOLOv1 (their measured recipes: :mod:`course_utils.training.recipes.detection`)."""

from course_utils.models.detection.faster_rcnn import (
    SmallBackbone,
    detect,
    small_faster_rcnn,
)
from course_utils.models.detection.rcnn import (
    RCNN,
    FastRCNN,
    detection_loss,
    proposal_targets,
)
from course_utils.models.detection.yolo import (
    TinyYOLO,
    YoloBatches,
    grid_targets,
    yolo_detect,
)

__all__ = ["RCNN", "FastRCNN", "SmallBackbone", "TinyYOLO", "YoloBatches", "detect", "detection_loss", "grid_targets",
           "proposal_targets", "small_faster_rcnn", "yolo_detect"]
