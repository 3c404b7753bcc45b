"""Test helper: a course function disguised as a student's, so that a check judges it as it would judge
a student's copy of it (the checks refuse the course's own functions, see grading.check)."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any


def as_student(fn: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
    """A copy of ``fn`` with its own code object, defined "in a notebook" (module ``__main__``)."""
    code = fn.__code__.replace(co_name=name or fn.__name__, co_filename="<student notebook>")
    copy = types.FunctionType(code, fn.__globals__, name or fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    functools.update_wrapper(copy, fn, assigned=("__doc__", "__annotations__"), updated=())
    copy.__module__ = "__main__"
    return copy


def student_module(module: types.ModuleType) -> types.SimpleNamespace:
    """The functions defined in ``module``, each as a student's copy (other names as they are), so that a
    test can build a wrong implementation from the course's functions and have it judged on its result."""
    names = {}
    for key, value in vars(module).items():
        is_own = isinstance(value, types.FunctionType) and value.__module__ == module.__name__
        names[key] = as_student(value) if is_own else value
    return types.SimpleNamespace(**names)
