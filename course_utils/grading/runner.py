"""Call a student's function the way every check does, and say where an exception came from.

:func:`call_student` is the one way the course calls a student's function, in the notebook's check and in
the grader's sandbox alike: with a time limit (:func:`call_with_time_limit`), with the library functions
the exercise asks the student to write themselves made off-limits (:func:`off_limits`), and, for
exercises whose result is trained with, probing the gradient (:class:`Probe`).
"""

from __future__ import annotations

import importlib
import inspect
import linecache
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:
    from course_utils.grading.exercise import Case, Exercise

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TimeLimitExceeded(BaseException):
    """Raised inside a student's function that runs too long (a BaseException, so that a bare
    ``except Exception`` in the student's code cannot swallow it)."""


class OffLimits(BaseException):
    """Raised when a student's function calls a function its exercise forbids (a BaseException, so that a
    bare ``except Exception`` in the student's code cannot swallow it)."""


def call_with_time_limit(fn: Callable[..., Any], args: tuple, kwargs: dict, seconds: float) -> Any:
    """``fn(*args, **kwargs)``, interrupted with :class:`TimeLimitExceeded` after ``seconds``.

    In the main thread on Unix this uses a real-time timer signal; elsewhere (Windows, threads) a
    trace function that checks the clock on every line of Python code.
    """
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        def on_alarm(signum: int, frame: object) -> None:
            raise TimeLimitExceeded(f"took longer than {seconds:g} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    deadline = time.monotonic() + seconds

    def tracer(frame: object, event: str, arg: object) -> Callable | None:
        if time.monotonic() > deadline:
            raise TimeLimitExceeded(f"took longer than {seconds:g} s")
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        return fn(*args, **kwargs)
    finally:
        sys.settrace(old)


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when even that fails (a student's exception class can do anything)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return "(its message could not be shown)"


def _is_library(filename: str) -> bool:
    path = os.path.abspath(filename)
    return (path.startswith(_PACKAGE_DIR + os.sep) or "site-packages" in path or "dist-packages" in path
            or path.startswith(os.path.dirname(os.__file__)))


def where_raised(exc: BaseException) -> str:
    """``in `assign`, line 4: d = x[idx]`` for the deepest frame in the student's code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_library(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    text = f"in `{frame.name}`, line {frame.lineno}"
    return f"{text}: {line}" if line else text


def raised_in(exc: BaseException) -> str:
    """Name of the function (any code) where the exception was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1].name if frames else "?"


# ---- from scratch means from scratch -----------------------------------------------------------
def _resolve(dotted: str) -> Any:
    """``"torch.nn.functional.interpolate"`` -> the object (``None`` if it does not exist here)."""
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        try:  # a method of a class: "torch.Tensor.index_put_"
            owner, _, cls = module.rpartition(".")
            return getattr(getattr(importlib.import_module(owner), cls), name)
        except (ImportError, AttributeError, ValueError):
            return None


def _short(dotted: str) -> str:
    return dotted.replace("torch.nn.functional.", "F.").replace("torchvision.ops.", "torchvision.ops.")


@contextmanager
def off_limits(ex: Exercise) -> Iterator[None]:
    """While active, calling one of ``ex.off_limits`` (or the exercise's own reference) raises
    :class:`OffLimits` with a message for the student, however the function was imported: Python
    functions are recognised by their code object, torch's C functions by identity (``sys.setprofile``)."""
    codes: dict[int, str] = {}  # by identity: a student's copy of a function is not the function
    builtins: dict[int, tuple[Any, str]] = {}
    for dotted in ex.off_limits:
        obj = _resolve(dotted)
        if obj is None:
            continue
        # A decorated function (sklearn's parameter validation, skimage's channel handling) shares its
        # wrapper's code with every function so decorated: recognise the function inside instead.
        obj = inspect.unwrap(getattr(obj, "__func__", obj))
        code = getattr(obj, "__code__", None)
        if code is not None:
            codes[id(code)] = f"`{_short(dotted)}` is off-limits inside it"
        else:
            builtins[id(obj)] = (obj, f"`{_short(dotted)}` is off-limits inside it")
    reference = getattr(ex.reference, "__code__", None)
    if reference is not None:
        codes[id(reference)] = (f"`{ex.reference.__module__}.{ex.reference.__name__}` (the course's reference "
                                "solution) is off-limits inside it")
    if not codes and not builtins:
        yield
        return
    task = ex.yourself or "write it yourself"

    def profile(frame: Any, event: str, arg: Any) -> None:
        what = None
        if event == "c_call" and id(arg) in builtins:
            what = builtins[id(arg)][1]
        elif event == "call" and id(frame.f_code) in codes:
            what = codes[id(frame.f_code)]
        if what:
            raise OffLimits(f"{ex.id} asks you to {task}: {what} (you can still use it outside your "
                            f"function, e.g. to test it)")

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)


# ---- the one way to call a student's function ---------------------------------------------------
class Probe(NamedTuple):
    """What a gradient exercise returns to its check: the value (detached), whether it carried a
    gradient, and the gradients of ``sum(value * weights)`` with respect to the probed arguments."""

    value: Any
    has_grad: bool
    grads: tuple


def _probe_weights(value: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(value.numel())
    return torch.rand(value.shape, generator=g, dtype=torch.float64).to(value.dtype) + 0.5


def call_student(ex: Exercise, fn: Callable[..., Any], case: Case, guard: bool = True) -> Any:
    """``fn(*case.args, **case.kwargs)`` under the exercise's time limit and off-limits functions
    (``guard``), returning a :class:`Probe` for exercises with ``gradient`` arguments."""
    args = list(case.args)
    leaves = []
    for i in ex.gradient:
        if i < len(args) and isinstance(args[i], torch.Tensor) and args[i].is_floating_point():
            args[i] = args[i].detach().clone().requires_grad_(True)
            leaves.append(args[i])
    with off_limits(ex) if guard else _nothing():
        value = call_with_time_limit(fn, tuple(args), case.kwargs, ex.time_limit)
    if not ex.gradient:
        return value
    if not isinstance(value, torch.Tensor) or not value.requires_grad or not leaves:
        return Probe(value.detach() if isinstance(value, torch.Tensor) else value, False, ())
    try:
        grads = torch.autograd.grad((value * _probe_weights(value)).sum(), leaves, allow_unused=True)
    except RuntimeError as err:
        return Probe(value.detach(), False, (str(err),))
    return Probe(value.detach(), True, tuple(torch.zeros_like(a) if g is None else g for a, g in zip(leaves, grads)))


@contextmanager
def _nothing() -> Iterator[None]:
    yield
