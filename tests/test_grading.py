"""The autograder students see: verdicts for right and wrong functions."""

import importlib

import pytest
import torch
from _student import as_student

from course_utils import grading
from course_utils.grading import CheckFailed, check, evaluate, fallback, get_exercise
from course_utils.grading.check import choose
from course_utils.ops.kmeans import assign

reference_assign = as_student(assign)  # the course function, as a student would copy it


def good(x, centres):
    return ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)


def test_correct_function_passes(capsys):
    result = evaluate("01.assign", good)
    assert result.passed and result.score == 1.0 and result.cases_passed == result.cases_total > 3
    check("01.assign", good)
    assert capsys.readouterr().out.startswith("✅ 01.assign PASSED")


def test_off_by_one_fails_with_inputs_expected_and_hint():
    def off_by_one(x, centres):
        return (good(x, centres) + 1) % centres.shape[0]

    result = evaluate("01.assign", off_by_one)
    assert result.status == "failed" and not result.passed and result.score == 0
    assert "case 1 of" in result.message
    assert "inputs: x = float32 tensor of shape (4, 1)" in result.message
    assert "is assigned to centre 1" in result.message and "hint:" in result.message


def test_exception_is_reported_with_its_line():
    def broken(x, centres):
        distances = x @ centres  # wrong shapes for D > 1
        return distances.argmin(1)

    result = evaluate("01.assign", broken)
    assert result.status == "error"
    assert "your function raised RuntimeError" in result.message
    assert "in `broken`, line" in result.message and "distances = x @ centres" in result.message


def test_endless_loop_is_stopped(monkeypatch):
    monkeypatch.setattr(get_exercise("01.assign"), "time_limit", 0.5)

    def forever(x, centres):
        while True:
            try:
                pass
            except Exception:  # a student's blanket except must not swallow the time limit
                pass

    result = evaluate("01.assign", forever)
    assert result.status == "timeout" and "timed out" in result.message


def test_in_place_modification_is_caught():
    def sneaky(x, centres):
        x -= 0  # no change in values...
        x[0] = 123.0  # ...but this one is
        return good(x, centres)

    result = evaluate("01.assign", sneaky)
    assert result.status == "mutated" and "modified its input in place" in result.message


def test_wrong_shape_and_type():
    result = evaluate("01.update", lambda x, labels, centres: centres[:1])
    assert result.status == "failed" and "wrong shape: expected (2, 2), got (1, 2)" in result.message
    result = evaluate("01.miou", lambda pred, target, c: "0.5")
    assert "expected a float" in result.message
    result = evaluate("01.assign", 42)
    assert result.status == "error" and "expected a function" in result.message


def test_not_implemented_is_kind_and_does_not_raise_even_in_strict_mode_for_check(capsys, monkeypatch):
    def stub(x, centres):
        raise NotImplementedError()

    result = evaluate("01.assign", stub)
    assert result.status == "not_implemented" and "NOT IMPLEMENTED yet: write `assign(x, centres)`" in result.message
    check("01.assign", stub)
    assert "NOT IMPLEMENTED yet" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(CheckFailed):
        check("01.assign", stub)


def test_not_implemented_helper_is_named():
    def helper(x):
        raise NotImplementedError()

    def kmeans(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
        helper(x)

    result = evaluate("01.kmeans", kmeans)
    assert result.status == "not_implemented" and "it calls `helper`" in result.message


def test_strict_mode_raises_on_failure(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(CheckFailed, match="01.assign FAILED"):
        check("01.assign", lambda x, c: torch.zeros(x.shape[0], dtype=torch.long))


def test_fallback_keeps_a_passing_function_and_replaces_a_failing_one(capsys):
    assert fallback("01.assign", good) is good
    assert capsys.readouterr().out == ""

    def stub(x, centres):
        raise NotImplementedError()

    assert fallback("01.assign", stub) is assign
    assert "Using the reference solution for 01.assign" in capsys.readouterr().out


def test_choose_on_what_fallback_handed_back_names_the_students_failure(capsys, monkeypatch):
    """A lab's ``f = fallback(id, f)`` then ``choose(id, f)`` (lab 07's pieces table): the reference came from
    the fallback, so the verdict is the student's failing check, not "this is the course's own function"."""
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    monkeypatch.setattr(importlib.import_module("course_utils.grading.check"), "_RECORDED", {})

    def stub(x, centres):
        raise NotImplementedError()

    assert choose("01.assign", assign)[1].status == "reference"   # no fallback yet: the reference as such
    replaced = fallback("01.assign", stub)
    chosen, result = choose("01.assign", replaced)
    assert chosen is assign and result.status == "not_implemented" and not result.passed
    assert fallback("01.assign", good) is good                            # fixed: the memory is cleared
    assert choose("01.assign", assign)[1].status == "reference"
    capsys.readouterr()


def test_hidden_seeds_change_the_random_cases():
    ex = get_exercise("01.assign")
    visible = ex.cases(torch.Generator().manual_seed(0))
    hidden = ex.cases(torch.Generator().manual_seed(12345))
    assert len(visible) == len(hidden)
    assert not torch.equal(visible[-1].args[0], hidden[-1].args[0])

    memory = {tuple(c.args[0].flatten().tolist()): c for c in visible}

    def hard_coded(x, centres):  # answers the visible cases only
        key = tuple(x.flatten().tolist())
        return reference_assign(x, centres) if key in memory else torch.zeros(x.shape[0], dtype=torch.long)

    assert evaluate("01.assign", hard_coded, seed=0).passed
    assert not evaluate("01.assign", hard_coded, seed=12345).passed


def test_a_sweep_runs_each_fixed_case_once_with_the_same_verdicts():
    calls = []

    def counted(x, centres):
        calls.append(x.clone())
        return good(x, centres)

    ex, passed = get_exercise("01.assign"), {}
    cases = [ex.cases(torch.Generator().manual_seed(seed)) for seed in (0, 1)]
    fixed = sum(any(torch.equal(c.args[0], d.args[0]) for d in cases[0]) for c in cases[1])
    assert 0 < fixed < len(cases[1])
    assert evaluate("01.assign", counted, 0, passed_cases=passed).passed and len(calls) == len(cases[0])
    assert evaluate("01.assign", counted, 1, passed_cases=passed).passed
    assert len(calls) == len(cases[0]) + len(cases[1]) - fixed   # the seed's new cases only

    def wrong_on_two_points(x, centres):   # fails a fixed case: rejected again on every seed, not skipped
        return good(x, centres) if x.shape[0] != 2 else good(x, centres).flip(0)

    failed: dict = {}
    verdicts = [evaluate("01.assign", wrong_on_two_points, seed, passed_cases=failed).passed for seed in (0, 1, 2)]
    assert verdicts == [evaluate("01.assign", wrong_on_two_points, seed).passed for seed in (0, 1, 2)] == [False] * 3


def test_a_sweep_still_links_the_cases_that_read_each_other():
    """01.init's "repeat" case compares with what the "distribution" case recorded: when the latter (passed,
    the same on every seed) is not run again, its kept output is recorded again, and a k-means++ that draws
    from the global random state still fails "repeat" on every seed."""
    from mutants.lab01 import init_global_rng

    passed: dict = {}
    results = [evaluate("01.init", init_global_rng, seed, passed_cases=passed) for seed in (0, 1, 2)]
    assert all(not r.passed and "generator in the same state" in r.message for r in results), results[-1].message
    assert any(value is not None for value in passed.values())   # the distribution case's outputs, kept


def test_fingerprint_tells_inputs_apart():
    from course_utils.grading.compare import fingerprint

    x = torch.arange(6.0).reshape(2, 3)
    same = [x, x.clone(), x.T.contiguous().T]
    assert len({fingerprint(v) for v in same}) == 1
    others = [x.double(), x.reshape(3, 2), x + 1e-7, x.clone().requires_grad_(), (x,), [x], {"x": x}, None, 2, 2.0]
    assert len({fingerprint(v) for v in others + [x]}) == len(others) + 1
    g = [torch.Generator().manual_seed(seed) for seed in (1, 1, 2)]
    assert fingerprint(g[0]) == fingerprint(g[1]) != fingerprint(g[2])
    torch.manual_seed(0)
    layer = torch.nn.Linear(2, 3)
    assert fingerprint(layer) == fingerprint(importlib.import_module("copy").deepcopy(layer))
    assert fingerprint(layer) != fingerprint(torch.nn.Linear(2, 3)) != fingerprint(torch.nn.Linear(2, 3).eval())

    class Own(torch.nn.Module):   # anything it cannot see into: never equal to anything
        pass

    assert fingerprint(Own()) is None and fingerprint(lambda: 0) is None and fingerprint(object()) is None


def test_unknown_ids_are_clear():
    with pytest.raises(KeyError, match="unknown exercise '01.nope'"):
        evaluate("01.nope", good)
    with pytest.raises(KeyError, match="there is no lab '99'"):
        evaluate("99.x", good)
    with pytest.raises(KeyError, match="look like '01.assign'"):
        grading.get_exercise("assign")


def test_compare_tolerances_and_containers():
    from course_utils.grading.compare import compare

    assert compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-9])) is None
    assert "wrong dtype" in compare(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    assert "1 of 2 values differ" in compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert compare(torch.tensor([True, False]), torch.tensor([True, True])) == \
        "result: 1 of 2 values differ; first at index 1: expected False, got True"      # bools: no subtraction
    assert compare({"a": 1.0, "b": [1, 2]}, {"a": 1.0 + 1e-9, "b": [1, 2]}) is None
    assert "keys differ" in compare({"a": 1}, {"b": 1})
    assert "result[1]: expected 2 items" in compare([1, [1, 2]], [1, [1]])
    assert compare(float("nan"), float("nan")) is None
    assert "expected a Python number (an int, e.g. with .item())" in compare(3, torch.tensor(3.0))
