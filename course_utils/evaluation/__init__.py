"""Scoring what the models predict, one module per task.

- ``segmentation``: confusion matrix, pixel accuracy, per-class and mean IoU, a model's predictions
  and scores over a set of images (labs 01-02);
- ``detection``: average precision, COCO style (lab 05 on);
- ``panoptic``: panoptic quality (lab 08);
- ``timing``: seconds per call and images per second (labs 05-06 and ``bench/``).
"""

from course_utils.evaluation.detection import (
    average_precision,
    box_map,
    coco_map,
    coco_map_from_ious,
)
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
from course_utils.evaluation.timing import images_per_second, seconds_per_call

__all__ = ["average_precision", "box_map", "coco_map", "coco_map_from_ious", "confusion_matrix", "images_per_second",
           "match_clusters", "mean_iou", "mean_over_present", "per_class_iou", "pixel_accuracy", "predict",
           "seconds_per_call", "segmentation_scores"]
