"""A check never crashes: whatever the student's function returns or does, the check prints a verdict,
and no message is a traceback into the course's code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import known_labs, lab_exercises
from course_utils.grading import evaluate

EXERCISES = [ex for lab in known_labs() for ex in lab_exercises(lab)]
ODD = {
    "None": None, "a string": "0.5", "an int": 3, "a float "
                                                  "nan": float("nan"), "a nan tensor": torch.tensor(float("nan")),
    "an empty tensor": torch.zeros(0), "a meta tensor": torch.empty(2, 3, device="meta"), "a dict": {"a": 1},
    "a list of objects": [object(), object()], "an object": object(), "a function": lambda: 0,
    "a layer": nn.Linear(2, 2), "a huge "
                                "tuple": tuple(range(100_000)), "a complex tensor": torch.ones(2, dtype=torch.cfloat),
    "a bool tensor": torch.ones(3, 3, dtype=torch.bool),
}


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.id)
@pytest.mark.parametrize("odd", list(ODD), ids=str)
def test_odd_return_values_get_a_verdict(exercise, odd):
    value = ODD[odd]
    result = evaluate(exercise.id, lambda *args, **kwargs: value)
    assert result.status == "failed", result.message
    assert "Traceback" not in result.message and "course_utils/" not in result.message


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.id)
def test_changing_an_argument_in_place_is_caught(exercise):
    def vandal(*args, **kwargs):
        for a in args:
            if isinstance(a, torch.Tensor) and a.numel():
                a.view(-1)[0] = a.view(-1)[0] + 1 if a.dtype != torch.bool else ~a.view(-1)[0]
                return None
            if isinstance(a, nn.Module):
                with torch.no_grad():
                    next(a.parameters()).add_(1.0)
                return None
            if isinstance(a, list) and a:
                a.append(a[0])
                return None
        raise ValueError("nothing to vandalise")

    result = evaluate(exercise.id, vandal)
    assert result.status in ("mutated", "error"), result.message
    assert "Traceback" not in result.message


def test_a_function_that_raises_a_base_exception_subclass_is_reported():
    class Weird(Exception):
        def __str__(self):
            raise RuntimeError("cannot even print me")

    def raises(*args, **kwargs):
        raise Weird()

    result = evaluate("01.assign", raises)
    assert result.status == "error" and "Weird" in result.message
