"""The exercises of each lab: ``labNN.py`` declares ``EXERCISES``, a tuple of
:class:`~course_utils.grading.exercise.Exercise` (cases, reference, hints), in the order the lab has them.

:data:`LABS` lists the labs that have exercises; a new lab adds its line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lab modules import the grading package, which imports this catalogue
    from course_utils.grading.exercise import Exercise

LABS: dict[str, str] = {
    "01": "k-means intensity clustering",
    "02": "fully convolutional networks",
    "03": "upsampling variants",
    "04": "transposed convolution as a matrix",
    "05": "from R-CNN to Faster R-CNN",
    "06": "YOLO: detection without proposals",
    "07": "Mask R-CNN: instance segmentation and keypoints",
    "08": "panoptic segmentation",
    "09": "context for dense prediction",
}


def known_labs() -> list[str]:
    """The labs that have exercises, ``["01", "02", ...]``."""
    return list(LABS)


def lab_exercises(lab: str) -> tuple[Exercise, ...]:
    """The exercises of a lab (``"01"``), in the lab's order."""
    if lab not in LABS:
        raise KeyError(f"there is no lab {lab!r} with exercises; known labs: {', '.join(LABS)}")
    return importlib.import_module(f"course_utils.exercises.lab{lab}").EXERCISES


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise with this id (``"01.assign"``)."""
    if not isinstance(exercise_id, str) or "." not in exercise_id:
        raise KeyError(f"exercise ids look like '01.assign', got {exercise_id!r}")
    lab = exercise_id.split(".")[0]
    exercises = {ex.id: ex for ex in lab_exercises(lab)}
    if exercise_id not in exercises:
        raise KeyError(f"unknown exercise {exercise_id!r}; lab {lab} has: {', '.join(exercises)}")
    return exercises[exercise_id]
