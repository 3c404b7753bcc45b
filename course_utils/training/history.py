"""What a training run did: :class:`History` (losses, loss parts, evaluations, seconds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """What happened: ``loss[i]`` at ``step[i]``, loss parts (dict losses), evaluations, seconds."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    eval_step: list[int] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)   # training time at each evaluation
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0                                       # training time (evaluations excluded)

    def record(self, step: int, loss: float, parts: Mapping[str, float]) -> None:
        """The loss (and its parts) after ``step`` steps."""
        self.step.append(step)
        self.loss.append(loss)
        for name, value in parts.items():
            self.parts.setdefault(name, []).append(value)

    def last(self, name: str) -> float:
        """The latest value of a metric (or ``"loss"``)."""
        values = self.loss if name == "loss" else self.metrics.get(name)
        if not values:
            raise KeyError(f"no values recorded for {name!r}; metrics: {sorted(self.metrics)}")
        return values[-1]

    def plot(self, axes: Any = None, smooth: int = 20) -> Any:
        """Loss (smoothed over ``smooth`` steps) and each metric against the step."""
        from course_utils.viz.training import plot_history

        return plot_history(self, axes, smooth)


