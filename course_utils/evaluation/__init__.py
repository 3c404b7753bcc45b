"""Scoring what the models predict, one module per task.

- ``segmentation``: confusion matrix, pixel accuracy, per-class and mean IoU, a model's predictions
  and scores over a set of images (labs 01-02), the boundary F-score (lab 09);
- ``detection``: average precision, COCO style (lab 05 on);
- ``panoptic``: panoptic quality as COCO's panopticapi defines it, and the segments that cost it (lab 08);
- ``timing``: seconds per call and images per second (labs 05-06 and ``bench/``).
"""

from course_utils.evaluation.detection import average_precision, box_map, coco_map, coco_map_from_ious, instance_map
from course_utils.evaluation.panoptic import (
    VOID,
    panoptic_quality,
    panoptic_stats,
    segment_errors,
)
from course_utils.evaluation.segmentation import (
    boundary_f1,
    boundary_f1_per_image,
    class_boundaries,
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

__all__ = ["VOID", "average_precision", "boundary_f1", "boundary_f1_per_image", "box_map", "class_boundaries",
           "coco_map", "coco_map_from_ious", "confusion_matrix", "images_per_second", "instance_map",
           "match_clusters", "mean_iou", "mean_over_present", "panoptic_quality", "panoptic_stats", "per_class_iou",
           "pixel_accuracy", "predict", "seconds_per_call", "segment_errors", "segmentation_scores"]
