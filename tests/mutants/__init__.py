"""Wrong implementations that a student would plausibly write, one module per lab (``labNN.py``).

Each module declares, with the decorators below:

- ``MUTANTS``: for every exercise of the lab, at least three wrong functions, each with one line saying
  which bug it models (off-by-one, another convention, a dtype slip, a shape the fixed cases never use,
  a lost gradient, ...). ``tests/test_mutants.py`` asserts that the exercise's check rejects every one of
  them on the visible seed and on hidden seeds.
- ``CHEATS``: functions that take a shortcut the exercise puts off-limits -- a library function, the
  compiled kernel behind it (``torch.ops.torchvision.nms``, ``torch.ops.aten...``), or the course's own code
  for the answer (its reference, or a private helper of it); their check must fail with status ``off_limits``.

A new lab adds ``tests/mutants/labNN.py`` in the same commit as its exercises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mutant:
    """A function written for an exercise, with one line saying what it does: the bug a mutant models, or
    (``tests/probes``) how a correct function differs from the reference."""

    exercise: str
    what: str
    fn: Callable[..., Any]

    @property
    def bug(self) -> str:  # the field's name before probes shared the registry
        return self.what


class Collection(list):
    """``MUTANTS = Collection()``, then ``@MUTANTS.add("01.assign", "argmax instead of argmin")``."""

    def add(self, exercise: str, what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            fn.__module__ = "__main__"  # as if written in a notebook
            self.append(Mutant(exercise, what, fn))
            return fn
        return register
