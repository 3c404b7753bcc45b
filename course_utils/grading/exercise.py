"""What an exercise is: the function students write, a reference, cases, and how to compare.

Each lab declares its exercises in ``course_utils/exercises/labNN.py`` as ``EXERCISES = (...)``;
:mod:`course_utils.exercises` lists the labs. An exercise id is ``"NN.name"`` (e.g. ``"01.assign"``)
and never changes once published: gradebooks refer to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

import torch

#: What a check can conclude. The student's check uses the first six; the grader adds the others.
Status = Literal["passed", "failed", "error", "timeout", "mutated", "not_implemented", "off_limits",
                 "reference", "crashed", "missing"]


class Tolerance(NamedTuple):
    """``|got - expected| <= atol + rtol * |expected|``, elementwise (``torch.isclose``)."""

    rtol: float
    atol: float


EXACT = Tolerance(0.0, 0.0)              # integers, counts, indices, sizes
FLOAT32 = Tolerance(1e-5, 1e-6)          # float32 results computed the same way (the default)
SUMS = Tolerance(1e-5, 1e-5)             # means and sums of many float32 terms (losses)
ACCUMULATED = Tolerance(1e-4, 1e-5)      # long float32 sums computed in another order (convolutions)
TIGHT = Tolerance(1e-6, 1e-6)            # ratios returned as Python floats (IoU, accuracy)
FLOAT64 = Tolerance(1e-9, 1e-9)          # float64 arithmetic


@dataclass
class Case:
    """One call: ``fn(*args, **kwargs)``. ``note`` says what the case is about ("an empty cluster").

    ``judged_alone`` (a class attribute): ``False`` for a case whose verdict reads what the cases before it
    recorded (lab 01's linked k-means++ cases); a sweep over seeds then runs it on every seed."""

    judged_alone: ClassVar[bool] = True
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
        function: the name of the function the student writes in the lab (what the grader looks for).
        verify: optional ``verify(case, got, expected) -> problem text or None``, for results that
            may legitimately differ from the reference's (ties, random choices); defaults to
            :func:`~course_utils.grading.compare.compare` with ``tolerance``.
        hint: shown when a case fails.
        tolerance: one of the presets above.
        exact_dtype: the result's dtype must equal the reference's (the default); ``False`` accepts any
            dtype of the same kind (any integer dtype for counts, say).
        off_limits: dotted names of what the student must not call inside the function: library functions
            (``"torch.nn.functional.interpolate"``; the compiled kernels behind them, ``torch.ops...``, come
            with them), course functions, or whole modules (every function defined in one).
            Without declaring anything, the course's own code for the answer is off-limits too: the
            reference, every function of the reference's module and every course function the reference
            calls (see :mod:`course_utils.grading.runner`); so a new exercise only lists the libraries.
        allowed: dotted names of course functions the lab lets the student call inside the function (and
            whatever they call), although the rule above would forbid them: the course's version of an
            earlier exercise that the lab says to reuse ("your box_iou is fine": after ``fallback`` the
            student's ``box_iou`` may be the course's). Input checks (:mod:`course_utils.validation`)
            are always allowed.
        yourself: what the student is asked to write, for the off-limits message ("write the
            interpolation yourself").
        gradient: positions of the arguments whose gradients must flow through the result as through
            the reference's (a loss that the lab trains with); the check compares them.
        time_limit: seconds per case.
        points: what the exercise is worth in the gradebook.
    """

    id: str
    _: KW_ONLY              # everything after the id is named: Exercise("01.assign", title=..., ...)
    title: str
    reference: Callable[..., Any]
    cases: Callable[[torch.Generator], list[Case]]
    function: str
    hint: str = ""
    verify: Callable[[Case, Any, Any], str | None] | None = None
    tolerance: Tolerance = FLOAT32
    exact_dtype: bool = True
    off_limits: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    yourself: str = ""
    gradient: tuple[int, ...] = ()
    time_limit: float = 10.0
    points: float = 1.0

    def __post_init__(self) -> None:
        lab, _, name = self.id.partition(".")
        if not (len(lab) == 2 and lab.isdigit() and name.isidentifier()):
            raise ValueError(f"exercise ids look like '01.assign', got {self.id!r}")
        if not self.function.isidentifier():
            raise ValueError(f"{self.id}: function must be a Python name, got {self.function!r}")

    @property
    def lab(self) -> str:
        return self.id.split(".")[0]

    @property
    def signature(self) -> str:
        """``assign(x, centres)``: the function the student writes, as the lab defines it."""
        try:
            params = inspect.signature(self.reference).parameters.values()
            text = ", ".join(str(p).split(":")[0].split("=")[0].strip() + ("=..." if p.default is not p.empty else "")
                             for p in params)
        except (TypeError, ValueError):
            text = "..."
        return f"{self.function}({text})"
