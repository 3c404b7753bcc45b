"""The checks reject plausible wrong answers (``tests/mutants/labNN.py``) on every seed and refuse the
library functions an exercise puts off-limits (``test_reference_seeds.py``: the reference passes on 100 seeds)."""

from __future__ import annotations

import importlib

import pytest
from _reference_outputs import sweep

from course_utils.exercises import known_labs, lab_exercises
from course_utils.grading import evaluate

SEEDS = (0, 1, 2, 271828)   # the notebook's visible seed, then hidden ones (271828: the grader's default)
MODULES = {lab: importlib.import_module(f"mutants.lab{lab}") for lab in known_labs()}
MUTANTS = [m for module in MODULES.values() for m in module.MUTANTS]
CHEATS = [m for module in MODULES.values() for m in module.CHEATS]


@pytest.mark.parametrize("lab", known_labs())
def test_every_exercise_has_at_least_three_mutants(lab):
    count = {ex.id: 0 for ex in lab_exercises(lab)}
    for m in MODULES[lab].MUTANTS:
        count[m.exercise] += 1
    assert all(n >= 3 for n in count.values()), count


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"{m.exercise}:{m.fn.__name__}")
def test_the_check_rejects_the_mutant_on_every_seed(mutant):
    for seed, result in sweep(mutant.exercise, mutant.fn, SEEDS):
        assert not result.passed, f"{mutant.exercise} passed a mutant ({mutant.what}) on seed {seed}"
        assert result.status not in ("reference", "off_limits"), f"judge the mutant on its result: {result.message}"


@pytest.mark.parametrize("lab", known_labs())
def test_every_lab_has_a_cheat(lab):
    assert MODULES[lab].CHEATS, f"lab {lab}: add a function that calls an off-limits library function"


@pytest.mark.parametrize("cheat", CHEATS, ids=lambda m: f"{m.exercise}:{m.fn.__name__}")
def test_off_limits_functions_fail_with_a_clear_message(cheat):
    result = evaluate(cheat.exercise, cheat.fn)
    assert result.status == "off_limits", result.message
    assert "is off-limits inside it" in result.message and "you can still use it" in result.message
