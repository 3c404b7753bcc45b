"""What an exercise is: a reference, cases, and how to compare; and the registry of exercises.

Each lab registers its exercises in ``course_utils/exercises/labNN.py``. An exercise id is
``"NN.name"`` (e.g. ``"01.assign"``) and never changes once published: gradebooks refer to it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Case:
    """One call: ``fn(*args, **kwargs)``. ``note`` says what the case is about ("an empty cluster")."""

    args: tuple
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Exercise:
    """A function students write.

    Attributes:
        id: stable id, ``"NN.name"``.
        title: one line saying what the function does.
        reference: the correct function, same signature as the students'.
        cases: ``cases(generator) -> list[Case]``: fixed cases first, then random ones drawn from
            ``generator`` (seeded with 0 in the notebook, with a hidden seed when an instructor grades).
        verify: optional ``verify(case, got, expected) -> problem text or None``, for results that
            may legitimately differ from the reference's (ties, random choices); defaults to
            :func:`~course_utils.grading.compare.compare` with ``rtol`` / ``atol``.
        hint: shown when a case fails.
        time_limit: seconds per case.
    """

    id: str
    title: str
    reference: Callable[..., Any]
    cases: Callable[[torch.Generator], list[Case]]
    hint: str = ""
    verify: Callable[[Case, Any, Any], str | None] | None = None
    rtol: float = 1e-5
    atol: float = 1e-6
    exact_dtype: bool = False
    time_limit: float = 10.0

    @property
    def lab(self) -> str:
        return self.id.split(".")[0]


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] is not exercise:
        raise ValueError(f"exercise id {exercise.id!r} is registered twice")
    _REGISTRY[exercise.id] = exercise
    return exercise


def _load_lab(lab: str) -> None:
    try:
        importlib.import_module(f"course_utils.exercises.lab{lab}")
    except ModuleNotFoundError as err:
        if err.name != f"course_utils.exercises.lab{lab}":
            raise
        raise KeyError(f"there is no lab {lab!r} with exercises; known labs: {', '.join(known_labs())}") from None


def known_labs() -> list[str]:
    from importlib import resources

    files = resources.files("course_utils.exercises").iterdir()
    return sorted(f.name[3:5] for f in files if f.name.startswith("lab") and f.name.endswith(".py"))


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise with this id (``"01.assign"``)."""
    if not isinstance(exercise_id, str) or "." not in exercise_id:
        raise KeyError(f"exercise ids look like '01.assign', got {exercise_id!r}")
    if exercise_id not in _REGISTRY:
        _load_lab(exercise_id.split(".")[0])
    if exercise_id not in _REGISTRY:
        lab = exercise_id.split(".")[0]
        known = [e for e in _REGISTRY if e.startswith(lab + ".")]
        raise KeyError(f"unknown exercise {exercise_id!r}; lab {lab} has: {', '.join(known)}")
    return _REGISTRY[exercise_id]


def lab_exercises(lab: str) -> list[Exercise]:
    """The exercises of a lab (``"01"``), in the order the lab registers them."""
    _load_lab(lab)
    return [e for e in _REGISTRY.values() if e.lab == lab]
