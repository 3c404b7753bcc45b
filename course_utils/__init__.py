"""Helpers behind every lab of the course, laid out as the data flows.

The teaching library (what notebooks import):

- ``config``: device, seeding and the ``ci`` / ``cpu`` / ``gpu`` profile; ``validation``: input checks;
- ``data``: synthetic scenes, batches, skimage sample images, real-data folders (VOC, COCO);
- ``structures``: boxes; ``ops``: references of what students write (k-means, upsampling, RoI ops, NMS,
  the panoptic merge, ...);
- ``models``: segmentation (FCN, U-Net) and detection (Faster R-CNN, YOLO, ...) models;
- ``training``: the training loop and every lab's recipe; ``evaluation``: segmentation, detection and
  panoptic metrics;
- ``viz``: drawing masks, boxes, panoptic maps and image grids;
- ``exercises``: each lab's exercises; ``grading``: the checks under each exercise and the fallback.

The course tooling (``course_utils.tools``: the ``course`` command, build, doctor, slides, grading of
submissions) is never imported by a notebook.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from course_utils.config import Profile, get_device, get_profile, seed_everything

__all__ = ["Profile", "get_device", "get_profile", "seed_everything"]
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    """``config``'s ``Profile``, ``get_device``, ``get_profile`` and ``seed_everything``, imported on first
    use: importing the package alone imports no torch (``course grade``'s execute step, which runs a
    notebook's kernel but no torch itself, starts a few seconds sooner)."""
    if name in __all__:
        from course_utils import config

        return getattr(config, name)
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")
