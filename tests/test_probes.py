"""Correct implementations written another way than the reference (``tests/probes/labNN.py``) pass their
exercise's check on 100 seeds: a check that fails one of them rejects a correct answer."""

from __future__ import annotations

import importlib

import pytest

from course_utils.exercises import known_labs, lab_exercises
from course_utils.grading import evaluate

MODULES = {lab: importlib.import_module(f"probes.lab{lab}") for lab in known_labs()}
PROBES = [p for module in MODULES.values() for p in module.PROBES]


@pytest.mark.parametrize("lab", known_labs())
def test_every_exercise_has_a_probe(lab):
    count = {ex.id: 0 for ex in lab_exercises(lab)}
    for p in MODULES[lab].PROBES:
        count[p.exercise] += 1
    assert all(n >= 1 for n in count.values()), count


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p.exercise}:{p.fn.__name__}")
def test_the_probe_passes_on_100_seeds(probe):
    for seed in range(100):
        result = evaluate(probe.exercise, probe.fn, seed)
        assert result.passed, f"seed {seed}, a correct {probe.exercise} ({probe.what}) fails: {result.message}"
