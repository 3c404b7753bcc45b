"""Drawing panoptic maps ``H x W x 2`` (category, instance): a hue per category, a shade per instance."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import validation
from course_utils.viz.images import class_legend, colorize, prepare_axes


def panoptic_colors(panoptic: torch.Tensor, num_classes: int) -> np.ndarray:
    """Panoptic map ``H x W x 2`` (category, instance) -> colours: one hue per category, a shade per instance."""
    validation.tensor("panoptic", panoptic, ndim=3, dtypes="int")
    if panoptic.shape[-1] != 2:
        raise ValueError(f"panoptic must be H x W x 2 (category id, instance id), got shape {tuple(panoptic.shape)}")
    cat, inst = panoptic[..., 0].cpu().long(), panoptic[..., 1].cpu().long()
    colours = colorize(cat, num_classes)
    # Shade instance k of a category by a factor that alternates between lighter and darker.
    shade = torch.where(inst > 0, 0.55 + 0.45 * ((inst * 0.618) % 1.0), torch.ones_like(inst, dtype=torch.float))
    return np.clip(colours * shade.numpy()[..., None], 0, 1)


def show_panoptic(panoptic: torch.Tensor, class_names: Sequence[str], ax: plt.Axes | None = None,
                  title: str | None = None) -> plt.Axes:
    ax = prepare_axes(ax, title)
    ax.imshow(panoptic_colors(panoptic, len(class_names)), interpolation="nearest")
    class_legend(ax, class_names, panoptic[..., 0].unique())
    return ax
