"""Test helper: course code disguised as a student's, so that a check judges it as it would judge a
student's copy of it (the checks refuse the course's own functions, see grading.runner).

A student who pastes a course function into a notebook pastes the course code it calls too: the copies
made here follow the function's code to every course function it names (directly, or as an attribute
of a course module such as ``_boxes.box_iou``) and copy those as well, all defined "in a notebook"
(module ``__main__``, their own code objects). The input checks of ``course_utils.validation`` stay the
course's: every student may call them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from course_utils.grading.runner import _codes, _is_course_code, _is_generic

_FILENAME = "<student notebook>"


class _Copier:
    """Copies of course functions, one per original, sharing one globals dict per course module."""

    def __init__(self) -> None:
        self.functions: dict[types.FunctionType, types.FunctionType] = {}
        self.globals: dict[int, dict[str, Any]] = {}
        self.modules: dict[str, types.SimpleNamespace] = {}

    def value(self, value: Any) -> Any:
        """``value`` as a student's notebook would hold it: course functions and modules copied."""
        if (isinstance(value, types.FunctionType) and _is_course_code(value.__code__)
                and not _is_generic(value.__code__)):
            return self.function(value)
        if isinstance(value, types.ModuleType) and value.__name__.startswith("course_utils."):
            return self.module(value)
        return value

    def module(self, module: types.ModuleType) -> Any:
        if module.__name__ == "course_utils.validation":
            return module
        if module.__name__ not in self.modules:
            copier = self

            class CopiedModule(types.SimpleNamespace):
                def __getattr__(self, name: str) -> Any:
                    value = copier.value(getattr(module, name))
                    setattr(self, name, value)
                    return value

            self.modules[module.__name__] = CopiedModule()
        return self.modules[module.__name__]

    def function(self, fn: types.FunctionType, name: str | None = None) -> types.FunctionType:
        if fn in self.functions and name is None:
            return self.functions[fn]
        namespace = self.globals.setdefault(id(fn.__globals__), dict(fn.__globals__))
        code = fn.__code__.replace(co_name=name or fn.__name__, co_filename=_FILENAME)
        copy = types.FunctionType(code, namespace, name or fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__kwdefaults__ = fn.__kwdefaults__
        copy.__qualname__ = name or fn.__qualname__
        functools.update_wrapper(copy, fn, assigned=("__doc__", "__annotations__"), updated=())
        copy.__module__ = "__main__"
        if name is None:
            self.functions[fn] = copy
        for key in {n for c in _codes(fn.__code__) for n in c.co_names}:
            if key in fn.__globals__ and namespace.get(key) is fn.__globals__[key]:
                namespace[key] = self.value(fn.__globals__[key])
        return copy


def as_student(fn: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
    """A copy of ``fn`` (renamed ``name``) and of the course code it calls, defined "in a notebook"."""
    return _Copier().function(fn, name)


def student_module(module: types.ModuleType) -> types.SimpleNamespace:
    """The functions defined in ``module``, each as a student's copy (with the course code they call;
    other names as they are), so that a test can build a wrong implementation from the course's functions
    and have it judged on its result."""
    copier = _Copier()
    names = {}
    for key, value in vars(module).items():
        is_own = isinstance(value, types.FunctionType) and value.__module__ == module.__name__
        names[key] = copier.function(value) if is_own else value
    return types.SimpleNamespace(**names)
