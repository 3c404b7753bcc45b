"""Judge a submission from what its functions did, without running them in the grader.

The grader never runs students' code in its own process. A sandbox process calls the student's
function on the exercise's cases and records each outcome as plain data (:func:`encode`): the
returned value, the arguments after the call, or the exception and the line it came from. The
grader then calls the pristine :func:`~course_utils.grading.evaluate` with a stand-in function
(:func:`judge`) that *replays* those outcomes, so the verdict and its message are exactly those of
the check students run, computed by code that a submission cannot patch.

Outcomes are dicts: ``{"kind": "returned", "value": ..., "args": ...}``, ``{"kind": "raised",
"type": name, "message": text, "not_implemented": bool, "frame": (name, line_no, line) | None,
"raised_in": name}`` or ``{"kind": "timeout"}``. Values are encoded as tagged tuples holding only
tensors and Python scalars, so the grader reads them with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import linecache
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.grading import CheckResult, evaluate, get_exercise
from course_utils.grading.check import reference_message
from course_utils.grading.exercise import Status
from course_utils.grading.runner import OffLimits, Probe, TimeLimitExceeded

_SCALARS = (bool, int, float, str, type(None))

#: the reference's output on each case, by (exercise id, seed, case number): the grader judges every
#: notebook of a class on the same cases, so the reference runs once per case for the whole class
REFERENCE_OUTPUTS: dict[tuple[str, int, int], Any] = {}


def encode(value: Any) -> tuple:
    """``value`` as tagged tuples of tensors and scalars (anything else becomes its type name)."""
    if isinstance(value, torch.Tensor):
        try:
            return ("t", value.detach().cpu().clone().as_subclass(torch.Tensor))
        except Exception:  # noqa: BLE001 - exotic tensors are described by name
            return ("o", type(value).__name__)
    if type(value) in _SCALARS:
        return ("s", value)
    if isinstance(value, np.generic):
        return ("g", value.dtype.str, value.item()) if type(value.item()) in _SCALARS else ("o", type(value).__name__)
    if isinstance(value, np.ndarray):
        try:
            return ("n", torch.from_numpy(np.ascontiguousarray(value).copy()))
        except (TypeError, ValueError):
            return ("o", "ndarray")
    if isinstance(value, (list, tuple)):  # named tuples and torch's return types become plain tuples
        return ("l" if isinstance(value, list) else "u", [encode(v) for v in value])
    if isinstance(value, Mapping) and all(type(k) in _SCALARS for k in value):
        return ("d", [(k, encode(v)) for k, v in value.items()])
    if isinstance(value, nn.Module) and getattr(nn, type(value).__name__, None) is type(value):
        return _encode_module(value)
    return ("o", type(value).__name__)


# A torch.nn layer (nn.Conv2d, nn.Sequential, ...) travels as its class name, its plain attributes,
# its parameters and buffers, and its children; it is rebuilt from torch.nn only, never from a pickle.
_MODULE_INTERNALS = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"}


def _plain(value: Any) -> bool:
    return type(value) in _SCALARS or (isinstance(value, (tuple, list)) and all(map(_plain, value)))


def _encode_module(module: nn.Module) -> tuple:
    attrs = [(k, v) for k, v in vars(module).items() if k not in _MODULE_INTERNALS and _plain(v)]
    params = [(k, None if p is None else p.detach().cpu().clone(), p is not None and p.requires_grad)
              for k, p in module._parameters.items()]
    buffers = [(k, None if b is None else b.detach().cpu().clone()) for k, b in module._buffers.items()]
    children = [(k, encode(m)) for k, m in module._modules.items()]
    return ("m", type(module).__name__, attrs, params, buffers, children)


def _decode_module(item: tuple) -> nn.Module:
    _, name, attrs, params, buffers, children = item
    cls = getattr(nn, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return type(str(name), (), {})()
    module = cls.__new__(cls)
    nn.Module.__init__(module)
    for key, value in attrs:
        object.__setattr__(module, key, value)
    for key, value, grad in params:
        module._parameters[key] = None if value is None else nn.Parameter(value, requires_grad=bool(grad))
    for key, value in buffers:
        module._buffers[key] = value
    for key, child in children:
        module._modules[key] = decode(child)
    return module


def decode(item: tuple) -> Any:
    """The value :func:`encode` describes (an object of the same type name for anything else)."""
    tag = item[0]
    if tag in ("t", "s"):
        return item[1]
    if tag == "g":
        return np.dtype(item[1]).type(item[2])
    if tag == "n":
        return item[1].numpy()
    if tag in ("l", "u"):
        values = [decode(v) for v in item[1]]
        return values if tag == "l" else tuple(values)
    if tag == "d":
        return {k: decode(v) for k, v in item[1]}
    if tag == "m":
        return _decode_module(item)
    return type(str(item[1]), (), {})()


def _apply(target: Any, after: tuple) -> None:
    """Make ``target`` (the grader's own copy of an argument) hold what the student's left in it."""
    tag = after[0]
    if isinstance(target, torch.Tensor) and tag == "t":
        new = after[1]
        if target.shape != new.shape or target.dtype != new.dtype or not torch.equal(target.cpu(), new):
            if not (new.is_floating_point() and target.shape == new.shape and target.dtype == new.dtype
                    and torch.allclose(target.cpu(), new, rtol=0, atol=0, equal_nan=True)):
                target.set_(new.to(target.device))
    elif isinstance(target, np.ndarray) and tag == "n":
        new = after[1].numpy()
        if target.shape == new.shape and target.dtype == new.dtype:
            target[...] = new
    elif isinstance(target, (list, tuple)) and tag in ("l", "u"):
        for t, a in zip(target, after[1]):
            _apply(t, a)
        if isinstance(target, list) and len(target) != len(after[1]):
            target[:] = decode(after)
    elif isinstance(target, dict) and tag == "d":
        new = dict(after[1])
        for key in list(target):
            if key in new:
                _apply(target[key], new[key])
        if set(target) != set(new):
            target.clear()
            target.update({k: decode(v) for k, v in new.items()})


def _raise_as_student(exc: BaseException, frame: tuple | None, filenames: list[str]) -> None:
    """Raise ``exc`` from a frame that looks like the student's (name, line number, line text),
    so that the check's "where" (``in `assign`, line 4: ...``) reads as it did for the student.
    The frame's source goes in ``linecache`` under a new name, added to ``filenames``."""
    if not frame:
        raise exc
    name, line_no, line = str(frame[0]), max(1, int(frame[1])), str(frame[2] or "")
    filename = f"/submission/{uuid.uuid4().hex}.py"
    filenames.append(filename)
    lines = [""] * (line_no - 1) + [line + "\n"]
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    code = compile("\n" * (line_no - 1) + "raise __exc__\n", filename, "exec")
    code = code.replace(co_name=name, co_qualname=name) if hasattr(code, "co_qualname") else code.replace(co_name=name)
    exec(code, {"__exc__": exc})  # noqa: S102 - raises exc; runs no student code


def _error(record: dict, exercise_id: str, status: Status, text: str) -> CheckResult:
    return CheckResult(exercise_id, status, f"❌ {exercise_id}: {text}", 0, record.get("cases", 0))


def judge(exercise_id: str, record: dict, seed: int) -> CheckResult:
    """The verdict on one exercise from a sandbox's ``record`` (see the module docstring).

    ``record`` holds ``name`` (the student's function), and either ``outcomes`` (a list, one per
    case run, in order) or ``missing`` / ``load_error`` / ``crashed`` (texts) when there was
    nothing to run or the sandbox died while running it.
    """
    ex = get_exercise(exercise_id)
    name = record.get("name", "?")
    if "missing" in record:
        return CheckResult(ex.id, "missing", f"❌ {ex.id}: {record['missing']}", 0, 0)
    if "load_error" in record:
        return _error(record, ex.id, "error", f"`{name}` could not be loaded for grading: {record['load_error']}")
    if "crashed" in record:
        return _error(record, ex.id, "crashed", record["crashed"])
    if record.get("reference"):
        return CheckResult(ex.id, "reference", reference_message(ex), 0, 0)
    outcomes = iter(record.get("outcomes", []))
    filenames: list[str] = []

    def replay(*args: Any, **kwargs: Any) -> Any:
        outcome = next(outcomes, None)
        if outcome is None:
            raise RuntimeError("the sandbox recorded no result for this case (it stopped early)")
        kind = outcome["kind"]
        if kind == "timeout":
            raise TimeLimitExceeded(f"took longer than {ex.time_limit:g} s")
        if kind == "off_limits":
            raise OffLimits(str(outcome["message"]))
        if kind == "raised":
            cls = NotImplementedError if outcome.get("not_implemented") else \
                type(str(outcome["type"]), (Exception,), {})
            frame = outcome.get("frame")
            if outcome.get("not_implemented"):
                frame = (outcome.get("raised_in") or name, 1, "")
            _raise_as_student(cls(outcome["message"]), frame, filenames)
        _apply((args, kwargs), outcome["args"])
        value = decode(outcome["value"])
        if ex.gradient and isinstance(value, tuple) and len(value) == 3:
            value = Probe(value[0], bool(value[1]), tuple(value[2]))
        return value

    replay.__name__ = replay.__qualname__ = name
    replay.__course_replay__ = True  # type: ignore[attr-defined]
    try:
        return evaluate(ex.id, replay, seed, reference_outputs=REFERENCE_OUTPUTS)
    finally:
        for filename in filenames:
            linecache.cache.pop(filename, None)
