"""Detectors for labs 05-07: a small torchvision Faster R-CNN, tiny R-CNN / Fast R-CNN for comparison,
a tiny YOLOv1, a small Mask R-CNN and keypoint R-CNN (the R-CNNs can run the student's own pieces:
:mod:`~course_utils.models.detection.pieces`, lab 05's in :mod:`~course_utils.models.detection.parts`, lab
07's in :mod:`~course_utils.models.detection.roi_heads`); their measured recipes are in
:mod:`course_utils.training.recipes`."""

# YoloBatches is data (course_utils.data.yolo); lab 06 notebooks saved before it moved there import it from
# here: this re-export keeps a student's older notebook running.
from course_utils.data.yolo import YoloBatches
from course_utils.models.detection.faster_rcnn import (
    SmallBackbone,
    detect,
    small_faster_rcnn,
)
from course_utils.models.detection.mask_rcnn import (
    instance_masks,
    small_keypoint_rcnn,
    small_mask_rcnn,
)
from course_utils.models.detection.pieces import Pieces, choose_pieces
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

__all__ = ["RCNN", "FastRCNN", "Pieces", "SmallBackbone", "TinyYOLO", "YoloBatches", "choose_pieces", "detect",
           "detection_loss", "instance_masks", "proposal_targets", "small_faster_rcnn",
           "small_keypoint_rcnn", "small_mask_rcnn", "yolo_detect"]
