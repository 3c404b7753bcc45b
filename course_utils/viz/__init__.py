"""Drawing for the labs, one module per kind of picture; every function takes torch tensors in the
course's layouts (images ``C x H x W`` in [0, 1], label maps ``H x W`` int) and draws on a matplotlib
``Axes`` (a new figure when ``ax`` is None).

- ``images``: an image, a label map with a legend, a grid of images (``viz.show_mask(...)``);
- ``conv``: matrices, filter copies and overlap patterns of labs 03-04 (``viz.conv.show_matrix(...)``);
- ``detection``: boxes with labels and scores, instance masks, keypoint skeletons, YOLO's grid;
- ``panoptic``: panoptic maps (void black) and the segments that cost PQ.
"""

from course_utils.viz import conv
from course_utils.viz.detection import draw_boxes, draw_grid, show_boxes, show_instances, show_keypoints
from course_utils.viz.images import class_legend, colorize, image_grid, palette, show_image, show_mask, to_numpy_image
from course_utils.viz.panoptic import panoptic_colors, show_panoptic, show_segment_errors

__all__ = ["class_legend", "colorize", "conv", "draw_boxes", "draw_grid", "image_grid", "palette", "panoptic_colors",
           "show_boxes", "show_image", "show_instances", "show_keypoints", "show_mask", "show_panoptic",
           "show_segment_errors", "to_numpy_image"]
