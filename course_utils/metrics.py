"""Old import path (course 0.1), kept so that notebooks saved before 0.2 still run: use
``course_utils.evaluation``."""

from course_utils.evaluation.segmentation import (
    confusion_matrix,
    match_clusters,
    mean_iou,
    per_class_iou,
    pixel_accuracy,
)

__all__ = ["confusion_matrix", "match_clusters", "mean_iou", "per_class_iou", "pixel_accuracy"]
