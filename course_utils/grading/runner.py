"""Call a student's function the way every check does, and say where an exception came from.

:func:`call_student` is the one way the course calls a student's function, in the notebook's check and in
the grader's sandbox alike: with a time limit (:func:`call_with_time_limit`), with what the exercise asks
the student to write themselves made off-limits (:func:`off_limits`: the library functions it names, the
compiled kernels behind them, and the course's own code for the answer -- the rule is spelled out above
:func:`guard_rules`), and, for exercises whose result is trained with, probing the gradient (:class:`Probe`).
"""

from __future__ import annotations

import dis
import importlib
import inspect
import linecache
import os
import signal
import sys
import threading
import time
import traceback
import types
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
    except Exception:  # noqa: BLE001 - a student's __str__ may raise anything
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
    line = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
    text = f"in `{frame.name}`, line {frame.lineno}"
    return f"{text}: {line}" if line else text


def raised_in(exc: BaseException) -> str:
    """Name of the function (any code) where the exception was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1].name if frames else "?"


# ---- from scratch means from scratch -----------------------------------------------------------
# What is off-limits inside the student's function (the rule every exercise gets for free):
#
# 1. the dotted names in ``Exercise.off_limits``: library functions (``"torchvision.ops.nms"``), course
#    functions, or a whole module (every function defined in it). A library function also forbids the
#    compiled kernels behind it, found automatically: the ``torch.ops.<namespace>.<op>`` its Python code
#    (or the code of its package it calls) names, and for a C function of torch (``torch._C._nn.X``,
#    ``torch.X``) the ATen op of the same name, ``torch.ops.aten.X``; each with every overload
#    (``.default``, ...) and its ``_X_backward`` / ``X_backward`` op;
# 2. automatically, the course's own code for the answer: the exercise's reference, every function defined
#    in the reference's module (public or private), and every course function the reference's code names,
#    followed from function to function (module attributes too: ``_yolo._loss_terms``);
# 3. except what stays usable: the input checks of ``course_utils.validation``, the course functions named
#    in ``Exercise.allowed`` (what the lab says the student may call: "your box_iou is fine" -- after
#    ``fallback`` the student's ``box_iou`` may be the course's), and whatever those call.
#
# Functions are recognised by their code object (a student's copy of a function is not the function) and
# C functions by identity, through ``sys.setprofile``; the guard is active around the student's call only
# (the reference computes the expected result without it).

_VALIDATION = os.path.join(_PACKAGE_DIR, "validation.py")


def _resolve(dotted: str) -> Any:
    """``"torch.nn.functional.interpolate"`` -> the object, a module for a module's name (``None`` if it
    does not exist here). An attribute wins over a submodule of the same name (``torchvision.ops.roi_align``
    is the function)."""
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        pass
    try:
        return importlib.import_module(dotted)
    except ImportError:
        pass
    try:  # a method of a class: "torch.Tensor.index_put_"
        owner, _, cls = module.rpartition(".")
        return getattr(getattr(importlib.import_module(owner), cls), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _short(dotted: str) -> str:
    return dotted.replace("torch.nn.functional.", "F.")


def _function(obj: object) -> Any:
    """The plain function inside a method, a decorated function (sklearn's parameter validation shares
    its wrapper's code with every function so decorated) or a ``torch.fx.wrap``; ``None`` if none."""
    obj = getattr(obj, "__func__", obj)
    try:
        obj = inspect.unwrap(obj) if callable(obj) else obj
    except ValueError:
        return None
    return obj if isinstance(obj, types.FunctionType) else None


def _is_course_code(code: types.CodeType) -> bool:
    return os.path.abspath(code.co_filename).startswith(_PACKAGE_DIR + os.sep)


def _is_generic(code: types.CodeType) -> bool:
    """An input check of ``course_utils.validation``: usable in any student's function."""
    return os.path.abspath(code.co_filename) == _VALIDATION


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _named(fn: types.FunctionType) -> Iterator[object]:
    """Every object ``fn``'s code names through its globals: ``f``, ``module.f``, ``torch.ops.ns.op``
    (chains of attributes of modules), and the functions in its closure."""
    for code in _codes(fn.__code__):
        current: object = None
        for ins in dis.get_instructions(code):
            if ins.opname == "LOAD_GLOBAL":
                current = fn.__globals__.get(ins.argval)
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and isinstance(current, types.ModuleType):
                current = getattr(current, str(ins.argval), None)
            else:
                current = None
                continue
            if current is not None:
                yield current
    for cell in fn.__closure__ or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue


def _module_functions(module: types.ModuleType) -> Iterator[types.FunctionType]:
    """The functions defined in ``module``: its own functions and the methods of its own classes."""
    for value in list(vars(module).values()):
        if isinstance(value, type) and value.__module__ == module.__name__:
            members = [_function(v) for v in vars(value).values()]
        else:
            members = [_function(value)]
        for fn in members:
            if fn is not None and fn.__module__ == module.__name__ and _is_course_code(fn.__code__):
                yield fn


def _course_reach(start: types.FunctionType, stop: set[int]) -> list[types.FunctionType]:
    """``start`` and every course function its code names, followed from function to function; not
    into the input checks or the functions whose code is in ``stop`` (the allowed ones)."""
    seen, todo, out = {id(start.__code__)}, [start], [start]
    while todo:
        for obj in _named(todo.pop()):
            fn = _function(obj)
            if fn is None or not _is_course_code(fn.__code__) or _is_generic(fn.__code__):
                continue
            key = id(fn.__code__)
            if key in seen or key in stop:
                continue
            seen.add(key)
            todo.append(fn)
            out.append(fn)
    return out


def _kernels(obj: object, dotted: str) -> list[tuple[Any, str]]:
    """The compiled ops behind the library function ``obj``, as ``(C callable, name)`` pairs: those its
    code (and the code of its module that it calls, 3 levels deep) names through ``torch.ops``; for a C
    function of torch, the ATen op of the same name. Each with every overload and its backward op."""
    packets: list[Any] = []
    fn = _function(obj)
    if fn is not None:
        seen, level = {id(fn.__code__)}, [fn]
        for _ in range(3):
            following = []
            for f in level:
                names = {n for code in _codes(f.__code__) for n in code.co_names}
                if "ops" in names:  # torch.ops.<namespace>.<op>
                    packets += [getattr(x, "overloadpacket", x) for x in _named(f)
                                if isinstance(x, (torch._ops.OpOverloadPacket, torch._ops.OpOverload))]
                for name in names:
                    inner = _function(f.__globals__.get(name))
                    if inner is not None and inner.__module__ == fn.__module__ and id(inner.__code__) not in seen:
                        seen.add(id(inner.__code__))
                        following.append(inner)
            level = following
    elif dotted.startswith("torch.") and callable(obj):
        packet = getattr(torch.ops.aten, getattr(obj, "__name__", "") or "-", None)
        if isinstance(packet, torch._ops.OpOverloadPacket):
            packets.append(packet)
    out = []
    for packet in packets:
        namespace, _, op = packet._qualified_op_name.partition("::")
        family = [packet]
        for name in (f"_{op}_backward", f"{op}_backward"):
            other = getattr(getattr(torch.ops, namespace), name, None)
            if isinstance(other, torch._ops.OpOverloadPacket):
                family.append(other)
        for p in family:
            label = f"torch.ops.{namespace}.{p._qualified_op_name.partition('::')[2]}"
            out.append((p._op, label))
            out += [(getattr(p, overload)._op, label) for overload in p.overloads()]
    return out


class GuardRules(NamedTuple):
    """What :func:`off_limits` refuses: ``codes`` (id of a code object -> why) for Python functions,
    ``builtins`` (id -> (object, why)) for C functions, and ``allowed``, the code objects inside which
    nothing is refused."""

    codes: dict[int, str]
    builtins: dict[int, tuple[Any, str]]
    allowed: frozenset[int]


_RULES: dict[int, tuple[Any, GuardRules]] = {}


def guard_rules(ex: Exercise) -> GuardRules:
    """The off-limits functions of ``ex`` (the rule above), computed once per exercise."""
    cached = _RULES.get(id(ex))
    if cached is not None and cached[0] is ex:
        return cached[1]
    allowed: set[int] = set()
    for dotted in ex.allowed:
        fn = _function(_resolve(dotted))
        if fn is None:
            raise ValueError(f"{ex.id}: allowed names {dotted!r}, which is not a Python function here")
        allowed.add(id(fn.__code__))
    codes: dict[int, str] = {}
    builtins: dict[int, tuple[Any, str]] = {}

    def forbid(fn: types.FunctionType, why: str) -> None:
        key = id(fn.__code__)
        if key not in allowed and not _is_generic(fn.__code__):
            codes.setdefault(key, why)

    for dotted in ex.off_limits:
        obj = _resolve(dotted)
        if obj is None:
            continue
        if isinstance(obj, types.ModuleType):
            for fn in _module_functions(obj):
                forbid(fn, f"`{fn.__module__}.{fn.__qualname__}` is off-limits inside it")
            continue
        fn = _function(obj)
        if fn is not None:
            forbid(fn, f"`{_short(dotted)}` is off-limits inside it")
        elif callable(obj):
            builtins[id(obj)] = (obj, f"`{_short(dotted)}` is off-limits inside it")
        for kernel, label in _kernels(obj, dotted):
            why = f"`{label}` (the compiled kernel of `{_short(dotted)}`) is off-limits inside it"
            builtins.setdefault(id(kernel), (kernel, why))
    reference = _function(ex.reference)
    if reference is not None and _is_course_code(reference.__code__):
        own = (f"`{reference.__module__}.{reference.__qualname__}` (the course's reference solution) is off-limits "
               "inside it")
        codes[id(reference.__code__)] = own
        module = sys.modules.get(reference.__module__)
        course = [*(_module_functions(module) if module else ()), *_course_reach(reference, allowed)]
        for fn in course:
            forbid(fn, f"`{fn.__module__}.{fn.__qualname__}` (the course's own code for this answer) is off-limits "
                       "inside it")
    elif reference is not None:
        codes[id(reference.__code__)] = (f"`{reference.__module__}.{reference.__qualname__}` (the course's reference "
                                         "solution) is off-limits inside it")
    rules = GuardRules(codes, builtins, frozenset(allowed))
    _RULES[id(ex)] = (ex, rules)
    return rules


@contextmanager
def off_limits(ex: Exercise) -> Iterator[None]:
    """While active, calling a function that :func:`guard_rules` forbids raises :class:`OffLimits` with a
    message for the student, however the function was imported or reached (``sys.setprofile``)."""
    codes, builtins, allowed = guard_rules(ex)
    if not codes and not builtins:
        yield
        return
    task = ex.yourself or "write it yourself"

    def inside_allowed(frame: Any) -> bool:
        while frame is not None:
            if id(frame.f_code) in allowed:
                return True
            frame = frame.f_back
        return False

    def profile(frame: Any, event: str, arg: Any) -> None:
        what = None
        if event == "c_call" and id(arg) in builtins:
            what = builtins[id(arg)][1]
        elif event == "call" and id(frame.f_code) in codes:
            what = codes[id(frame.f_code)]
            frame = frame.f_back
        if what and not (allowed and inside_allowed(frame)):
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
