"""Drawing detections: boxes (XYXY, pixels) with labels and scores over an image (:func:`show_boxes`), and
YOLO's ``S x S`` grid over it with the responsible cells shaded (:func:`draw_grid`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from course_utils import validation
from course_utils.viz.images import palette, show_image


def show_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor | None = None,
               class_names: Sequence[str] | None = None, scores: torch.Tensor | None = None,
               ax: plt.Axes | None = None, title: str | None = None, color: str | None = None) -> plt.Axes:
    """Boxes ``N x 4`` (XYXY, pixels) with optional labels and scores over an image."""
    ax = show_image(image, ax, title)
    validation.tensor("boxes", boxes, ndim=2)
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


def draw_grid(ax: plt.Axes, grid: int, image_size: int | tuple[int, int], cells: Iterable[Sequence[int]] = (),
              color: str = "yellow") -> plt.Axes:
    """YOLO's ``grid x grid`` cells over an image drawn on ``ax`` (``image_size``: ``H x W`` pixels, or one
    int), with the cells ``(row, col)`` in ``cells`` shaded in ``color`` (e.g. the ones responsible for an
    object: ``target[..., 4].nonzero().tolist()``). Pixel centres at integers, as :func:`show_boxes`."""
    s = validation.positive_int("grid", grid)
    h, w = validation.size_pair("image_size", image_size, square=True)
    for k in range(1, s):
        ax.axhline(k * h / s - 0.5, color="white", lw=0.7, alpha=0.8)
        ax.axvline(k * w / s - 0.5, color="white", lw=0.7, alpha=0.8)
    for cell in cells:
        row, col = (int(v) for v in cell)
        if not (0 <= row < s and 0 <= col < s):
            raise ValueError(f"cells must be (row, col) pairs in 0 .. {s - 1}, got {tuple(cell)}")
        ax.add_patch(Rectangle((col * w / s - 0.5, row * h / s - 0.5), w / s, h / s, color=color, alpha=0.35))
    return ax
