"""Drawing a training run: the loss and each metric against the step."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def plot_history(history: Any, axes: Any = None, smooth: int = 20) -> Any:
    """A :class:`~course_utils.training.History`'s loss (smoothed over ``smooth`` steps) and each of its
    metrics against the step, one panel each; returns the axes."""
    n = 1 + len(history.metrics)
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(4 * n, 3))
    axes = np.atleast_1d(axes)
    loss = np.asarray(history.loss)
    if len(loss) >= smooth > 1:
        loss = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
    axes[0].plot(history.step[len(history.step) - len(loss):], loss)
    axes[0].set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    for ax, (name, values) in zip(axes[1:], history.metrics.items()):
        ax.plot(history.eval_step, values, "o-")
        ax.set(xlabel="step", title=name)
    return axes
