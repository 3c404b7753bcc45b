"""Drawing images and label maps: one image, a label map with a legend, a grid of images.

Every function takes torch tensors in the course's layouts (images ``C x H x W`` in [0, 1], label
maps ``H x W`` int) and draws on a matplotlib ``Axes`` (a new figure when ``ax`` is None).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch

from course_utils import validation


def palette(n: int) -> np.ndarray:
    """``n x 3`` distinct colours in [0, 1] (tab20, then evenly spaced hues)."""
    tab20 = plt.get_cmap("tab20")(np.arange(20))[:, :3]  # its 20 colours, RGB
    base = list(tab20[::2]) + list(tab20[1::2])
    extra = [colorsys.hsv_to_rgb(i / max(n, 1), 0.65, 0.9) for i in range(max(0, n - len(base)))]
    return np.array((base + extra)[:n], dtype=np.float64).reshape(n, 3)


def prepare_axes(ax: plt.Axes | None, title: str | None) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """``C x H x W`` (C = 1 or 3) or ``H x W`` tensor -> ``H x W x 3`` array for imshow."""
    validation.tensor("image", image, ndim=(2, 3))
    image = image.detach().float().cpu()
    if image.ndim == 2:
        image = image[None]
    if image.shape[0] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels (C x H x W), got shape {tuple(image.shape)}")
    return image.expand(3, -1, -1).permute(1, 2, 0).clamp(0, 1).numpy()


def show_image(image: torch.Tensor, ax: plt.Axes | None = None, title: str | None = None) -> plt.Axes:
    ax = prepare_axes(ax, title)
    ax.imshow(to_numpy_image(image), interpolation="nearest")
    return ax


def colorize(labels: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Label map ``H x W`` -> ``H x W x 3`` colours (ignored pixels white)."""
    validation.tensor("labels", labels, ndim=2, dtypes="int")
    lab = labels.detach().cpu().long()
    valid = lab != ignore_index if ignore_index is not None else torch.ones_like(lab, dtype=torch.bool)
    if valid.any() and (lab[valid].min() < 0 or lab[valid].max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got values in "
                         f"[{lab[valid].min().item()}, {lab[valid].max().item()}]")
    colours = palette(num_classes)[lab.clamp(0, num_classes - 1).numpy()]
    colours[~valid.numpy()] = 1.0
    return colours


def show_mask(labels: torch.Tensor, class_names: Sequence[str], image: torch.Tensor | None = None,
              alpha: float = 0.55, ax: plt.Axes | None = None, title: str | None = None,
              ignore_index: int | None = None, legend: bool = True) -> plt.Axes:
    """A label map, over ``image`` if given, with a legend of the classes present."""
    ax = prepare_axes(ax, title)
    colours = colorize(labels, len(class_names), ignore_index)
    if image is not None:
        base = to_numpy_image(image)
        if base.shape[:2] != colours.shape[:2]:
            raise ValueError(f"image is {base.shape[:2]} but labels are {colours.shape[:2]}; they must match")
        colours = (1 - alpha) * base + alpha * colours
    ax.imshow(colours, interpolation="nearest")
    if legend:
        class_legend(ax, class_names, labels.unique())
    return ax


def class_legend(ax: plt.Axes, class_names: Sequence[str], classes: torch.Tensor, void: bool = False) -> None:
    """A legend beside ``ax`` with one patch per class in ``classes`` (in the palette's colours), and a
    black "void" patch if ``void``."""
    present = sorted({int(c) for c in classes.reshape(-1).tolist() if 0 <= c < len(class_names)})
    handles = [Patch(color=palette(len(class_names))[c], label=class_names[c]) for c in present]
    if void:
        handles.append(Patch(color="black", label="void"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def image_grid(images: Sequence[torch.Tensor], titles: Sequence[str] | None = None, ncols: int = 4,
               size: float = 2.6) -> plt.Figure:
    """A grid of images (``C x H x W`` or label maps ``H x W`` shown in grey)."""
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < len(images):
            show_image(images[k], ax, titles[k] if titles else None)
        else:
            ax.set_axis_off()
    fig.tight_layout()
    return fig
