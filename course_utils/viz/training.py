"""Drawing a training run: the loss and each metric against the step (:func:`plot_history`), and each
part of a summed loss in its own panel (:func:`plot_loss_parts`: a detector's four losses)."""

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


def part_title(name: str) -> str:
    """A loss part's name as a panel title: ``"loss_rpn_box_reg"`` -> ``"rpn box reg"``."""
    return name.removeprefix("loss_").replace("_", " ")


def plot_loss_parts(history: Any, axes: Any = None, points: int = 50) -> Any:
    """Each part of a summed loss (``history.parts``, e.g. torchvision's four Faster R-CNN losses or YOLO's
    four terms) in its own panel, log scale, averaged over blocks of steps (about ``points`` points per
    curve, so the trend shows through the noise of small batches); returns the axes."""
    parts = history.parts
    if not parts:
        raise ValueError("history.parts is empty: the loss was a single tensor, not a dict of parts "
                         "(plot_history draws the total)")
    if axes is None:
        _, axes = plt.subplots(1, len(parts), figsize=(3.25 * len(parts), 2.8))
    axes = np.atleast_1d(axes)
    if len(axes) < len(parts):
        raise ValueError(f"need one axes per loss part ({len(parts)}: {', '.join(parts)}), got {len(axes)}")
    for ax, (name, values) in zip(axes, parts.items()):
        k = max(1, len(values) // max(1, points))
        blocks = np.asarray(values[:len(values) // k * k]).reshape(-1, k).mean(1)
        ax.plot(history.step[k - 1::k][:len(blocks)], blocks)
        ax.set_title(part_title(name), fontsize=9)
        ax.set(xlabel="step", yscale="log")
    plt.tight_layout()
    return axes


__all__ = ["part_title", "plot_history", "plot_loss_parts"]
