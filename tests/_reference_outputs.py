"""The reference's outputs, kept for the tests that judge many functions on the same seeds.

The mutants, the probes and the reference's own 100-seed runs each call ``evaluate`` on the same exercise
and seed again and again; :data:`KEPT` lets every call after the first read the reference's output on each
case instead of running the reference again (``evaluate(..., reference_outputs=KEPT)``). It holds the
outputs of the last few exercises only (a file's tests of one exercise run one after the other),
so that its memory stays small. :func:`sweep` is how those tests call it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from course_utils.grading import CheckResult, evaluate

Key = tuple[str, int, int]   # (exercise id, seed, case number)


class RecentExercises(MutableMapping[Key, Any]):
    """A mapping that forgets the outputs of all but the ``exercises`` most recently used exercises."""

    def __init__(self, exercises: int = 3) -> None:
        self.exercises = exercises
        self._by_exercise: OrderedDict[str, dict[Key, Any]] = OrderedDict()

    def _outputs(self, key: Key, create: bool = False) -> dict[Key, Any] | None:
        outputs = self._by_exercise.get(key[0])
        if outputs is None and create:
            outputs = self._by_exercise[key[0]] = {}
            while len(self._by_exercise) > self.exercises:
                self._by_exercise.popitem(last=False)
        if outputs is not None:
            self._by_exercise.move_to_end(key[0])
        return outputs

    def __getitem__(self, key: Key) -> Any:
        outputs = self._outputs(key)
        if outputs is None:
            raise KeyError(key)
        return outputs[key]

    def __setitem__(self, key: Key, value: Any) -> None:
        outputs = self._outputs(key, create=True)
        assert outputs is not None
        outputs[key] = value

    def __delitem__(self, key: Key) -> None:
        outputs = self._outputs(key)
        if outputs is None:
            raise KeyError(key)
        del outputs[key]

    def __iter__(self) -> Iterator[Key]:
        return (k for outputs in self._by_exercise.values() for k in outputs)

    def __len__(self) -> int:
        return sum(len(outputs) for outputs in self._by_exercise.values())


KEPT = RecentExercises()


def sweep(exercise_id: str, fn: Callable, seeds: Iterable[int]) -> Iterator[tuple[int, CheckResult]]:
    """(seed, ``evaluate(exercise_id, fn, seed)``) for each seed, the reference's outputs read from :data:`KEPT`
    and the cases ``fn`` already passed with the same inputs (the fixed cases, the same on every seed) not run
    again (``passed_cases``)."""
    passed: dict[str, Any] = {}
    for seed in seeds:
        yield seed, evaluate(exercise_id, fn, seed, reference_outputs=KEPT, passed_cases=passed)
