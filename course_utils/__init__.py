"""Helpers behind every lab of the course, laid out as the data flows.

- ``config``: device, seeding and the ``ci`` / ``cpu`` / ``gpu`` profile.
- ``data``: synthetic scenes, skimage sample images, real-data folders.
- ``ops``: reference implementations of the operations students write (k-means, ...).
- ``metrics``: confusion matrix, pixel accuracy, IoU.
- ``viz``: drawing masks, boxes, panoptic maps and image grids.
- ``grading``: the checks under each exercise, and the fallback to the reference.
- ``build``: writes ``labs/`` from ``solutions/``.
"""

from course_utils.config import Profile, get_device, get_profile, seed_everything

__all__ = ["Profile", "get_device", "get_profile", "seed_everything"]
__version__ = "0.2.0"
