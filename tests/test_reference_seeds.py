"""Every exercise's reference, written into a notebook as a student would, passes its check on 100 seeds
(a file of its own so that the test runner spreads it and the mutation tests over two workers)."""

from __future__ import annotations

import pytest
from _reference_outputs import KEPT
from _student import as_student

from course_utils.exercises import known_labs, lab_exercises
from course_utils.grading import evaluate


@pytest.mark.slow   # make quick: tests/test_exercises.py runs the references on three seeds
@pytest.mark.parametrize("exercise", [ex for lab in known_labs() for ex in lab_exercises(lab)], ids=lambda ex: ex.id)
def test_the_reference_passes_on_100_seeds(exercise):
    student, passed = as_student(exercise.reference, exercise.function), {}
    for seed in range(100):   # the fixed cases (the same on every seed) are run on the first seed only
        result = evaluate(exercise.id, student, seed, reference_outputs=KEPT, passed_cases=passed)
        assert result.passed, f"seed {seed}: {result.message}"
