"""Scoring what the models predict, one module per task.

- ``segmentation``: confusion matrix, pixel accuracy, per-class and mean IoU, a model's predictions
  and scores over a set of images (labs 01-02);
- ``detection``: average precision, COCO style (lab 05 on);
- ``panoptic``: panoptic quality (lab 08).
"""

from course_utils.evaluation.detection import average_precision, box_map, coco_map, instance_map
from course_utils.evaluation.segmentation import (
    confusion_matrix,
    match_clusters,
    mean_iou,
    mean_over_present,
    per_class_iou,
    pixel_accuracy,
    predict,
    segmentation_scores,
)

__all__ = ["average_precision", "box_map", "coco_map", "confusion_matrix", "instance_map", "match_clusters", "mean_iou",
           "mean_over_present", "per_class_iou", "pixel_accuracy", "predict", "segmentation_scores"]
