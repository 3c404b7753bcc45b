"""Training, in one place: the loop of every lab and the measured recipes that the notebooks and ``bench/`` read.

    history = train(model, batches, TrainConfig(steps=500, lr=1e-3), loss_fn=F.cross_entropy,
                    evaluate=lambda m: {"mIoU": ...}, profile=P)

- ``loop``: :func:`train`, the one training loop (seeded, resumable, the profile's device, AMP and compile);
- ``config``: :class:`TrainConfig`, its settings; ``history``: :class:`History`, what it returns;
- ``optim``: the optimizer and learning-rate schedule (plain arguments); ``checkpoints``: saving and resuming;
- ``recipes``: each lab's measured per-profile recipe as a frozen dataclass (``recipes.segmentation.FCN``,
  ``recipes.detection.FASTER_RCNN`` and ``YOLO``), with the functions that build and train its model. Import
  them from there (they import the models; this package does not).
"""

from typing import Any

from course_utils.training.config import TrainConfig
from course_utils.training.history import History
from course_utils.training.loop import train

__all__ = ["History", "TrainConfig", "train"]


def __getattr__(name: str) -> Any:
    """Old import paths (course 0.1), kept for notebooks saved before 0.2: ``SceneBatches`` now lives
    in ``course_utils.data``, ``predict`` and ``segmentation_scores`` in ``course_utils.evaluation``."""
    if name == "SceneBatches":
        from course_utils.data.batches import SceneBatches
        return SceneBatches
    if name in ("predict", "segmentation_scores"):
        from course_utils.evaluation import segmentation
        return getattr(segmentation, name)
    raise AttributeError(f"module 'course_utils.training' has no attribute {name!r}")
