"""The check under each exercise, and the fallback to the reference.

:func:`evaluate` runs a function on the exercise's cases and returns a :class:`CheckResult`;
:func:`check` prints its message, and raises :class:`CheckFailed` when ``COURSE_STRICT=1`` (how the
solutions are tested); :func:`fallback` hands the lab the student's function or the reference.
"""

from __future__ import annotations

import copy
import inspect
import os
import textwrap
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

import torch

from course_utils import exercises as catalogue
from course_utils.grading.compare import compare, compare_sums, describe, fingerprint, snapshot, unchanged
from course_utils.grading.exercise import Case, Exercise, Status
from course_utils.grading.runner import (
    OffLimits,
    Probe,
    TimeLimitExceeded,
    call_student,
    raised_in,
    safe_str,
    where_raised,
)

VISIBLE_SEED = 0


class CheckFailed(AssertionError):
    """A check did not pass in strict mode."""


@dataclass
class CheckResult:
    exercise_id: str
    status: Status
    message: str
    cases_passed: int
    cases_total: int

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def score(self) -> float:
        return 1.0 if self.passed else 0.0


def strict() -> bool:
    return os.environ.get("COURSE_STRICT", "").strip() not in ("", "0", "false", "no")


def _describe_inputs(reference: Callable, case: Case) -> str:
    try:
        bound = inspect.signature(reference).bind(*case.args, **case.kwargs)
        items = list(bound.arguments.items())
    except TypeError:
        items = [(f"arg{i}", a) for i, a in enumerate(case.args)] + list(case.kwargs.items())
    return "; ".join(f"{name} = {describe(value)}" for name, value in items)


def is_course_function(fn: object, ex: Exercise) -> bool:
    """True for the exercise's reference, and for any function of the course's own package (what
    ``fallback`` hands back), unless it replays a submission's recorded results (the grader)."""
    if getattr(fn, "__course_replay__", False):
        return False
    return fn is ex.reference or str(getattr(fn, "__module__", "") or "").split(".")[0] == "course_utils"


def _judge(ex: Exercise, case: Case, got: Any, expected: Any) -> str | None:
    """What is wrong with ``got`` (``None``: nothing). Probes compare value, then gradients."""
    if isinstance(expected, Probe):
        if not isinstance(got, Probe):
            return "the check expected your function's result with its gradient"
        problem = _judge(ex, case, got.value, expected.value)
        if problem or not expected.has_grad:
            return problem
        if not got.has_grad:
            why = f" ({got.grads[0]})" if got.grads else ""
            return ("your result carries no gradient" + why + ": gradients must flow through this function (the "
                    "lab trains with it, or it is a learnable layer), so build it from the inputs with torch "
                    "operations (no torch.no_grad(), .detach(), .item(), .numpy() or torch.tensor(...))")
        for i, (want, have) in zip(ex.gradient, zip(expected.grads, got.grads)):
            # a gradient entry sums many products: where they cancel, another order rounds differently
            problem = compare_sums(want, have, *ex.tolerance, path=f"gradient with respect to argument {i}")
            if problem:
                return problem + " (the value is right, but its gradient is not the reference's)"
        return None
    if ex.verify:
        return ex.verify(case, got, expected)
    return compare(expected, got, *ex.tolerance, ex.exact_dtype)


def evaluate(exercise_id: str, fn: Callable[..., Any], seed: int = VISIBLE_SEED, *,
             reference_outputs: MutableMapping[tuple[str, int, int], Any] | None = None,
             passed_cases: MutableMapping[str, Any] | None = None) -> CheckResult:
    """Run ``fn`` on the exercise's cases (random ones drawn with ``seed``) and judge it. Never raises
    for anything ``fn`` does or returns.

    ``reference_outputs``: for callers that judge many functions on the same seeds (the test suite's
    mutants and probes), a mapping where the reference's output on each case is kept, by (exercise id,
    seed, case number), and read back instead of running the reference again.

    ``passed_cases``: for callers that judge one function on many seeds (the test suite's sweeps), a dict
    kept from call to call, where the :func:`fingerprint` of each case ``fn`` passed is entered; a case with
    the same inputs as one already passed is not run again (the fixed cases, the same on every seed, are
    then judged once: a function that depends on nothing but its inputs gets the same verdict). A case
    whose verdict reads what the cases before it recorded (``Case.judged_alone`` false) keeps its outputs
    there and is judged again on them, so that what it records is there for the cases after it."""
    ex = catalogue.get_exercise(exercise_id)
    if not callable(fn):
        return CheckResult(ex.id, "error", f"❌ {ex.id} FAILED: expected a function `{ex.signature}`, "
                                           f"got {describe(fn)}.", 0, 0)
    if is_course_function(fn, ex):
        return CheckResult(ex.id, "reference", reference_message(ex), 0, 0)
    replaying = getattr(fn, "__course_replay__", False)
    cases = ex.cases(torch.Generator().manual_seed(seed))
    total = len(cases)
    for n, case in enumerate(cases):
        label = f"case {n + 1} of {total}" + (f" ({case.note})" if case.note else "")

        def fail(status: Status, problem: str, label: str = label, case: Case = case, n: int = n) -> CheckResult:
            lines = [f"❌ {ex.id} FAILED on {label}.", f"   inputs: {_describe_inputs(ex.reference, case)}",
                     f"   problem: {problem}"]
            if ex.hint and status in ("failed", "mutated"):
                lines.append(f"   hint: {ex.hint}")
            return CheckResult(ex.id, status, "\n".join(lines), n, total)

        seen = None if passed_cases is None else fingerprint((type(case).__name__, case.note, case.args, case.kwargs))
        if passed_cases is not None and seen is not None and seen in passed_cases:
            if case.judged_alone:
                continue
            expected, got = copy.deepcopy(passed_cases[seen])
            if _judge(ex, case, got, expected) is None:   # it passed on these outputs before
                continue
        # snapshot copies a tuple to a tuple and a dict to a dict
        key = (ex.id, seed, n)
        if reference_outputs is not None and key in reference_outputs:
            expected = copy.deepcopy(reference_outputs[key])  # a check may not change the kept one
        else:
            copied = Case(cast(tuple, snapshot(case.args)), cast(dict, snapshot(case.kwargs)))
            expected = call_student(ex, ex.reference, copied, guard=False)
            if reference_outputs is not None:
                reference_outputs[key] = expected
        before = snapshot((case.args, case.kwargs))
        try:
            got = fn(*case.args, **case.kwargs) if replaying else call_student(ex, fn, case)
        except NotImplementedError as exc:
            where = raised_in(exc)
            name = getattr(fn, "__name__", "your function")
            extra = "" if where in (name, "?") else f" (it calls `{where}`, which is not implemented yet)"
            return CheckResult(ex.id, "not_implemented", f"✏️  {ex.id} NOT IMPLEMENTED yet{extra}: write "
                               f"`{ex.signature}`, then run this cell again.", 0, total)
        except OffLimits as exc:
            return fail("off_limits", str(exc))
        except TimeLimitExceeded:
            return fail("timeout", f"timed out: no result after {ex.time_limit:g} s. Is there a loop that never ends?")
        except Exception as exc:  # the student's bug: report it, do not crash the notebook
            where = where_raised(exc)
            return fail("error", f"your function raised {type(exc).__name__}: {safe_str(exc)}"
                                 + (f"\n   {where}" if where else ""))
        try:
            if not unchanged(before, (case.args, case.kwargs)):
                return fail("mutated", "your function modified its input in place; work on a copy "
                                       "(e.g. x.clone()) or use out-of-place operations")
            problem = _judge(ex, case, got, expected)
        except Exception as exc:  # noqa: BLE001 - a result the check cannot even look at
            problem = (f"the check could not compare your result ({describe(got)}) with the expected one: "
                       f"{type(exc).__name__}: {exc}")
        if problem:
            return fail("failed", problem)
        if passed_cases is not None and seen is not None:
            try:
                passed_cases[seen] = None if case.judged_alone else copy.deepcopy((expected, got))
            except Exception:  # noqa: BLE001 - outputs that cannot be copied: the case is run again next time
                pass
    return CheckResult(ex.id, "passed", f"✅ {ex.id} PASSED: {total} of {total} cases ({ex.title}).", total, total)


def reference_message(ex: Exercise) -> str:
    return (f"ℹ️  {ex.id} NOT CHECKED: this is the course's reference solution, not your function. Run the "
            f"cell that defines your `{ex.function}`, then this check again.")


WIDTH = 88  # characters per printed line: JupyterLab's output area would break longer ones mid-word


def wrapped(message: str, width: int = WIDTH) -> str:
    """``message`` with each line wrapped at word boundaries; continuation lines are indented."""
    out = []
    for line in message.split("\n"):
        indent = " " * (len(line) - len(line.lstrip()) + 3)
        out.append(textwrap.fill(line, width, subsequent_indent=indent, break_long_words=False,
                                 break_on_hyphens=False) if len(line) > width else line)
    return "\n".join(out)


def check(exercise_id: str, fn: Callable[..., Any], seed: int = VISIBLE_SEED) -> None:
    """Print the verdict for ``fn``; in strict mode (``COURSE_STRICT=1``) a failure raises."""
    result = evaluate(exercise_id, fn, seed)
    print(wrapped(result.message))
    if strict() and not result.passed:
        raise CheckFailed(result.message)


def choose(exercise_id: str, fn: Callable[..., Any]) -> tuple[Callable[..., Any], CheckResult]:
    """:func:`fallback`'s choice, without its notice: ``(fn, result)`` if ``fn`` passes its check, else
    ``(the reference, result)``; in strict mode a failure raises :class:`CheckFailed`. Given the reference
    that :func:`fallback` handed back for this exercise (a lab's ``f = fallback("NN.f", f)``), the result is
    the student's failing check that made it do so, not "this is the reference"."""
    ex = catalogue.get_exercise(exercise_id)
    replaced = recorded(ex.id, fn) if fn is ex.reference else None
    if replaced is not None and replaced.status != "reference":
        return ex.reference, replaced
    result = evaluate(exercise_id, fn)
    if result.passed:
        return fn, result
    if strict():
        raise CheckFailed(result.message)
    return ex.reference, result


# exercise id -> (the function fallback returned, the verdict on the function it was given), the last call
_RECORDED: dict[str, tuple[Callable[..., Any], CheckResult]] = {}


def recorded(exercise_id: str, fn: Callable[..., Any]) -> CheckResult | None:
    """The verdict of the last :func:`fallback` on ``exercise_id`` if it returned ``fn`` (the student's
    function it judged, or the reference it handed back instead of a failing one), else ``None``."""
    entry = _RECORDED.get(exercise_id)
    return entry[1] if entry is not None and entry[0] is fn else None


def whose(exercise_id: str, fn: Callable[..., Any]) -> str:
    """``"your"`` or ``"the course's"``: whose ``fn`` is, for a printed line that names it ("on one batch your
    yolo_loss 1.05"). The last :func:`fallback` on ``exercise_id`` decides when it returned ``fn``;
    otherwise the course's own functions are the course's and any other is the student's."""
    verdict = recorded(exercise_id, fn)
    if verdict is not None:
        return "your" if verdict.passed else "the course's"
    return "the course's" if is_course_function(fn, catalogue.get_exercise(exercise_id)) else "your"


def fallback(exercise_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` if it passes its check, else the reference (with a notice), so the lab can go on. The verdict
    is kept for :func:`recorded` (what ``choose_pieces`` reports as whose each piece is)."""
    chosen, result = choose(exercise_id, fn)
    _RECORDED[exercise_id] = (chosen, result)
    if result.passed:
        return chosen
    print(wrapped(f"ℹ️  Using the reference solution for {exercise_id}: your version does not pass its check "
                  f"yet ({result.status.replace('_', ' ')}). The rest of the lab still runs."))
    return chosen
