"""What runs in a student's notebook: the checks under each exercise, and the fallback to the reference.

In a lab::

    check("01.assign", assign)            # prints one verdict
    assign = fallback("01.assign", assign)  # later cells: yours if it passes, else the reference
    print(f"{whose('01.assign', assign)} assign: ...")   # "your" or "the course's", for printed lines

- ``check``: :func:`evaluate`, :func:`check`, :func:`fallback`, :func:`whose` and :class:`CheckResult`;
- ``exercise``: what an exercise declares (:class:`Exercise`, :class:`Case`, tolerances, statuses);
- ``compare``: how a result is compared with the expected one, and described in words;
- ``runner``: calling the student's function with a time limit, and saying where it raised.

The exercises themselves are declared in :mod:`course_utils.exercises`.
"""

from course_utils.exercises import get_exercise, lab_exercises
from course_utils.grading.check import (
           VISIBLE_SEED,
           CheckFailed,
           CheckResult,
           check,
           evaluate,
           fallback,
           whose,
)
from course_utils.grading.exercise import Case, Exercise, Status, Tolerance

__all__ = ["VISIBLE_SEED", "Case", "CheckFailed", "CheckResult", "Exercise", "Status", "Tolerance", "check",
           "evaluate", "fallback", "get_exercise", "lab_exercises", "whose"]
