"""Box structures: formats, area, clipping, IoU."""

from course_utils.structures.boxes import (
    FORMATS,
    box_area,
    box_convert,
    box_iou,
    check_xyxy,
    clip_boxes_to_image,
)

__all__ = ["FORMATS", "box_area", "box_convert", "box_iou", "check_xyxy", "clip_boxes_to_image"]
