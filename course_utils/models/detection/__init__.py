"""Detectors for labs 05 and 06: a small torchvision Faster R-CNN, tiny R-CNN / Fast R-CNN for comparison,
a tiny YOLOv1 (their measured recipes: :mod:`course_utils.training.recipes.detection`)."""

# YoloBatches is data (course_utils.data.yolo); lab 06 notebooks saved before it moved there import it from
# here: this re-export keeps a student's older notebook running.
from course_utils.data.yolo import YoloBatches
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
    yolo_detect,
)

__all__ = ["RCNN", "FastRCNN", "SmallBackbone", "TinyYOLO", "YoloBatches", "detect", "detection_loss",
           "proposal_targets", "small_faster_rcnn", "yolo_detect"]
