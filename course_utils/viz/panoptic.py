"""Drawing panoptic maps ``H x W x 2`` (category, instance): a hue per category, a shade per instance,
void black; and the segments that cost PQ (:func:`course_utils.evaluation.panoptic.segment_errors`),
outlined on the image, the target and the prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import validation
from course_utils.viz.images import class_legend, colorize, prepare_axes, to_numpy_image

if TYPE_CHECKING:
    from course_utils.evaluation.panoptic import SegmentError

VOID_COLOUR = (0.0, 0.0, 0.0)


def panoptic_colors(panoptic: torch.Tensor, num_classes: int) -> np.ndarray:
    """Panoptic map ``H x W x 2`` (category, instance) -> ``H x W x 3`` colours: one hue per category, a
    shade per instance; void (any category outside ``0 .. num_classes - 1``, such as VOID = -1) black."""
    validation.tensor("panoptic", panoptic, ndim=3, dtypes="int")
    if panoptic.shape[-1] != 2:
        raise ValueError(f"panoptic must be H x W x 2 (category id, instance id), got shape {tuple(panoptic.shape)}")
    validation.positive_int("num_classes", num_classes)
    cat, inst = panoptic[..., 0].cpu().long(), panoptic[..., 1].cpu().long()
    void = (cat < 0) | (cat >= num_classes)
    colours = colorize(cat.clamp(0, num_classes - 1), num_classes)
    # Shade instance k of a category by a factor that alternates between lighter and darker.
    shade = torch.where(inst > 0, 0.55 + 0.45 * ((inst * 0.618) % 1.0), torch.ones_like(inst, dtype=torch.float))
    colours = np.clip(colours * shade.numpy()[..., None], 0, 1)
    colours[void.numpy()] = VOID_COLOUR
    return colours


def show_panoptic(panoptic: torch.Tensor, class_names: Sequence[str], ax: plt.Axes | None = None,
                  title: str | None = None) -> plt.Axes:
    """A panoptic map with a legend of the categories present (and "void" in black when there is any)."""
    ax = prepare_axes(ax, title)
    ax.imshow(panoptic_colors(panoptic, len(class_names)), interpolation="nearest")
    cat = panoptic[..., 0]
    class_legend(ax, class_names, cat.unique(), void=bool(((cat < 0) | (cat >= len(class_names))).any()))
    return ax


def show_segment_errors(errors: Sequence[SegmentError], preds: torch.Tensor, target: torch.Tensor,
                        class_names: Sequence[str], images: torch.Tensor | None = None, limit: int = 6,
                        size: float = 2.4) -> plt.Figure:
    """One row per error (the first ``limit`` of ``errors``): the image (if given), the target and the
    prediction, the segment outlined in white, the reason as the row's title.

    ``preds``, ``target``: the maps ``errors`` came from (``H x W x 2`` or ``B x H x W x 2``); ``images``:
    ``C x H x W`` or ``B x C x H x W``."""
    validation.int_at_least("limit", limit, 1)
    shown = list(errors)[:limit]
    if not shown:
        raise ValueError("no errors to show: the prediction costs no PQ (or the list is empty)")
    batch = {}
    for name, value in (("preds", preds), ("target", target), ("images", images)):
        if value is not None:
            validation.tensor(name, value, ndim=(3, 4))
            batch[name] = value if value.ndim == 4 else value[None]
    pictures = batch.get("images")
    late = [e.image for e in shown if e.image >= len(batch["target"]) or e.image >= len(batch["preds"])]
    if late:
        raise ValueError(f"an error of image {late[0]}, but the maps have {len(batch['target'])} image(s): pass the "
                         "maps the errors came from")
    columns = (["image"] if pictures is not None else []) + ["target", "prediction"]
    fig, axes = plt.subplots(len(shown), len(columns), figsize=(size * len(columns), size * len(shown) + 0.3),
                             squeeze=False)
    for row, error in zip(axes, shown):
        b = error.image
        for ax, column in zip(row, columns):
            if column == "image" and pictures is not None:
                ax.imshow(to_numpy_image(pictures[b]), interpolation="nearest")
            else:
                key = "target" if column == "target" else "preds"
                ax.imshow(panoptic_colors(batch[key][b], len(class_names)), interpolation="nearest")
            ax.contour(error.mask.cpu().numpy().astype(float), levels=[0.5], colors="white", linewidths=1.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if row is axes[-1]:
                ax.set_xlabel(column)
        row[0].set_title(f"{error.kind}: {error.reason}", fontsize=8, loc="left")
    fig.tight_layout()
    return fig
