"""Drawing detections over an image: boxes (XYXY, pixels) with labels and scores (:func:`show_boxes`), instance
masks (:func:`show_instances`), keypoint skeletons (:func:`show_keypoints`), and YOLO's ``S x S`` grid with the
responsible cells shaded (:func:`draw_grid`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from course_utils import validation
from course_utils.viz.images import palette, show_image


def show_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor | None = None,
               class_names: Sequence[str] | None = None, scores: torch.Tensor | None = None,
               ax: plt.Axes | None = None, title: str | None = None, color: str | None = None) -> plt.Axes:
    """Boxes ``N x 4`` (XYXY, pixels) with optional labels and scores over an image."""
    ax = show_image(image, ax, title)
    draw_boxes(ax, boxes, labels, class_names, scores, color)
    return ax


def draw_boxes(ax: plt.Axes, boxes: torch.Tensor, labels: torch.Tensor | None = None,
               class_names: Sequence[str] | None = None, scores: torch.Tensor | None = None,
               color: str | Sequence | None = None) -> None:
    """Boxes ``N x 4`` (XYXY, pixel-edge coordinates) on an image already drawn in ``ax``, coloured by label
    (or ``color``: one colour, or one per box), with the class name and score when given."""
    validation.tensor("boxes", boxes, ndim=2)
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes must be N x 4 (x1, y1, x2, y2), got shape {tuple(boxes.shape)}")
    n_colours = len(class_names) if class_names else 1
    per_box = color is not None and not isinstance(color, str) and len(color) == len(boxes) and len(boxes) > 0 \
        and not isinstance(color[0], (int, float))
    for i, (x1, y1, x2, y2) in enumerate(boxes.detach().cpu().tolist()):
        label = int(labels[i]) if labels is not None else 0
        edge = (color[i] if per_box else color) if color is not None else palette(max(n_colours, label + 1))[label]
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=edge, linewidth=1.5))
        text = class_names[label] if class_names is not None and labels is not None else ""
        if scores is not None:
            text = f"{text} {float(scores[i]):.2f}".strip()
        if text:
            ax.text(x1, y1 - 1, text, fontsize=7, color="white", va="bottom",
                    bbox={"facecolor": edge, "alpha": 0.8, "pad": 1, "edgecolor": "none"})

def show_instances(image: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor | None = None,
                   labels: torch.Tensor | None = None, class_names: Sequence[str] | None = None,
                   scores: torch.Tensor | None = None, ax: plt.Axes | None = None, title: str | None = None,
                   alpha: float = 0.5) -> plt.Axes:
    """Instance masks ``N x H x W`` (bool, or probabilities kept above 0.5; ``N x 1 x H x W`` too) over an
    image, one colour per instance (later ones on top), with their boxes, labels and scores when given."""
    validation.tensor("masks", masks, ndim=(3, 4))
    masks = masks[:, 0] if masks.ndim == 4 else masks
    masks = (masks > 0.5 if masks.dtype != torch.bool else masks).detach().cpu()
    if masks.shape[1:] != image.shape[-2:]:
        raise ValueError(f"masks must be N x H x W with the image's H x W {tuple(image.shape[-2:])}, got shape "
                         f"{tuple(masks.shape)} (paste M x M masks into the image first)")
    ax = show_image(image, ax, title)
    colours = palette(max(len(masks), 1))
    overlay = np.zeros((*masks.shape[1:], 4))
    for i, m in enumerate(masks.numpy()):
        overlay[m] = (*colours[i], alpha)
    ax.imshow(overlay, interpolation="nearest")
    if boxes is not None:
        draw_boxes(ax, boxes, labels, class_names, scores, color=list(colours[:len(boxes)]))
    return ax


def show_keypoints(image: torch.Tensor, keypoints: torch.Tensor, skeleton: Sequence[tuple[int, int]],
                   ax: plt.Axes | None = None, title: str | None = None, min_visibility: float = 0.5,
                   hollow_hidden: bool = False) -> plt.Axes:
    """Skeletons over an image: ``keypoints`` ``N x J x 3`` ``(x, y, v)`` in pixels, joint pairs ``skeleton``;
    joints with ``v < min_visibility`` (COCO's 0: not labelled) are left out; with ``hollow_hidden`` (ground
    truth), hidden joints (COCO's ``v = 1``) are drawn hollow (a model's keypoints all have ``v = 1``)."""
    validation.tensor("keypoints", keypoints, ndim=3)
    if keypoints.shape[-1] != 3:
        raise ValueError(f"keypoints must be N x J x 3 (x, y, visibility), got shape {tuple(keypoints.shape)}")
    ax = show_image(image, ax, title)
    colours = palette(max(len(keypoints), 1))
    for i, points in enumerate(keypoints.detach().cpu().tolist()):
        for a, b in skeleton:
            if points[a][2] >= min_visibility and points[b][2] >= min_visibility:
                ax.plot([points[a][0] - 0.5, points[b][0] - 0.5], [points[a][1] - 0.5, points[b][1] - 0.5],
                        color=colours[i], linewidth=1.5)
        for x, y, v in points:
            if v >= min_visibility:
                ax.plot(x - 0.5, y - 0.5, "o", markersize=3, color=colours[i],
                        markerfacecolor="none" if hollow_hidden and v == 1 else colours[i])
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
