"""Every exercise's reference, written into a notebook as a student would, passes its check on 100 seeds
(a file of its own so that the test runner spreads it and the mutation tests over two workers)."""

from __future__ import annotations

import pytest
from _reference_outputs import sweep
from _student import as_student

from course_utils.exercises import known_labs, lab_exercises


@pytest.mark.slow   # make quick: tests/test_exercises.py runs the references on three seeds
@pytest.mark.parametrize("exercise", [ex for lab in known_labs() for ex in lab_exercises(lab)], ids=lambda ex: ex.id)
def test_the_reference_passes_on_100_seeds(exercise):
    for seed, result in sweep(exercise.id, as_student(exercise.reference, exercise.function), range(100)):
        assert result.passed, f"seed {seed}: {result.message}"
