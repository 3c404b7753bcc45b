"""Detectors for lab 05: a small torchvision Faster R-CNN, and tiny R-CNN / Fast R-CNN for comparison."""

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

__all__ = ["RCNN", "FastRCNN", "SmallBackbone", "detect", "detection_loss", "proposal_targets", "small_faster_rcnn"]
