"""Drawing for the labs: images, label maps with a legend, boxes, panoptic maps, grids.

Every function takes torch tensors in the course's layouts (images ``C x H x W`` in [0, 1], label
maps ``H x W`` int) and draws on a matplotlib ``Axes`` (a new figure when ``ax`` is None).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch, Rectangle

from course_utils import _validate


def palette(n: int) -> np.ndarray:
    """``n x 3`` distinct colours in [0, 1] (tab20, then evenly spaced hues)."""
    base = list(plt.get_cmap("tab20").colors)[::2] + list(plt.get_cmap("tab20").colors)[1::2]
    extra = [colorsys.hsv_to_rgb(i / max(n, 1), 0.65, 0.9) for i in range(max(0, n - len(base)))]
    return np.array((base + extra)[:n], dtype=np.float64).reshape(n, 3)


def _axes(ax: plt.Axes | None, title: str | None) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """``C x H x W`` (C = 1 or 3) or ``H x W`` tensor -> ``H x W x 3`` array for imshow."""
    _validate.tensor("image", image, ndim=(2, 3))
    image = image.detach().float().cpu()
    if image.ndim == 2:
        image = image[None]
    if image.shape[0] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels (C x H x W), got shape {tuple(image.shape)}")
    return image.expand(3, -1, -1).permute(1, 2, 0).clamp(0, 1).numpy()


def show_image(image: torch.Tensor, ax: plt.Axes | None = None, title: str | None = None) -> plt.Axes:
    ax = _axes(ax, title)
    ax.imshow(to_numpy_image(image), interpolation="nearest")
    return ax


def colorize(labels: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Label map ``H x W`` -> ``H x W x 3`` colours (ignored pixels white)."""
    _validate.tensor("labels", labels, ndim=2, dtypes="int")
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
    ax = _axes(ax, title)
    colours = colorize(labels, len(class_names), ignore_index)
    if image is not None:
        base = to_numpy_image(image)
        if base.shape[:2] != colours.shape[:2]:
            raise ValueError(f"image is {base.shape[:2]} but labels are {colours.shape[:2]}; they must match")
        colours = (1 - alpha) * base + alpha * colours
    ax.imshow(colours, interpolation="nearest")
    if legend:
        present = sorted(int(c) for c in labels.unique() if 0 <= c < len(class_names))
        handles = [Patch(color=palette(len(class_names))[c], label=class_names[c]) for c in present]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax


def show_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor | None = None,
               class_names: Sequence[str] | None = None, scores: torch.Tensor | None = None,
               ax: plt.Axes | None = None, title: str | None = None, color: str | None = None) -> plt.Axes:
    """Boxes ``N x 4`` (XYXY, pixels) with optional labels and scores over an image."""
    ax = show_image(image, ax, title)
    _validate.tensor("boxes", boxes, ndim=2)
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes must be N x 4 (x1, y1, x2, y2), got shape {tuple(boxes.shape)}")
    n_colours = len(class_names) if class_names else 1
    for i, (x1, y1, x2, y2) in enumerate(boxes.detach().cpu().tolist()):
        label = int(labels[i]) if labels is not None else 0
        edge = color or palette(max(n_colours, label + 1))[label]
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=edge, linewidth=1.5))
        text = class_names[label] if class_names is not None and labels is not None else ""
        if scores is not None:
            text = f"{text} {float(scores[i]):.2f}".strip()
        if text:
            ax.text(x1, y1 - 1, text, fontsize=7, color="white", va="bottom",
                    bbox={"facecolor": edge, "alpha": 0.8, "pad": 1, "edgecolor": "none"})
    return ax


def panoptic_colors(panoptic: torch.Tensor, num_classes: int) -> np.ndarray:
    """Panoptic map ``H x W x 2`` (category, instance) -> colours: one hue per category, a shade per instance."""
    _validate.tensor("panoptic", panoptic, ndim=3, dtypes="int")
    if panoptic.shape[-1] != 2:
        raise ValueError(f"panoptic must be H x W x 2 (category id, instance id), got shape {tuple(panoptic.shape)}")
    cat, inst = panoptic[..., 0].cpu().long(), panoptic[..., 1].cpu().long()
    colours = colorize(cat, num_classes)
    # Shade instance k of a category by a factor that alternates between lighter and darker.
    shade = torch.where(inst > 0, 0.55 + 0.45 * ((inst * 0.618) % 1.0), torch.ones_like(inst, dtype=torch.float))
    return np.clip(colours * shade.numpy()[..., None], 0, 1)


def show_panoptic(panoptic: torch.Tensor, class_names: Sequence[str], ax: plt.Axes | None = None,
                  title: str | None = None) -> plt.Axes:
    ax = _axes(ax, title)
    ax.imshow(panoptic_colors(panoptic, len(class_names)), interpolation="nearest")
    present = sorted(int(c) for c in panoptic[..., 0].unique())
    handles = [Patch(color=palette(len(class_names))[c], label=class_names[c]) for c in present]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax


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
