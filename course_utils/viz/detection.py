"""Drawing detections: boxes (XYXY, pixels) with labels and scores over an image."""

from __future__ import annotations

from collections.abc import Sequence

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
