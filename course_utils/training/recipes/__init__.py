"""Each lab's measured per-profile training recipe (``ci``, ``cpu``, ``gpu``), as frozen dataclasses, with the
functions that build and train its model. Notebooks and ``bench/`` read the same recipe::

    from course_utils.training.recipes.detection import FASTER_RCNN, train_faster_rcnn
    R = FASTER_RCNN[P.name]                          # print(R): every setting
    quick = dataclasses.replace(R, steps=100)         # a variant

- ``segmentation``: lab 02's FCN (``FCN``);
- ``detection``: lab 05's Faster R-CNN (``FASTER_RCNN``) and lab 06's YOLO (``YOLO``).
- ``panoptic``: lab 08's pipeline (``PANOPTIC``): lab 02's FCN-8s and lab 07's Mask R-CNN merged into panoptic maps.

A lab that hands its model to a later lab saves it with
:func:`course_utils.training.checkpoints.save_trained` (weights + recipe); the later lab loads it with
``load_trained``, which refuses a file trained with another recipe.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

R = TypeVar("R")


def with_overrides(recipe: R, items: list[str]) -> R:
    """``recipe`` with ``KEY=VALUE`` overrides (what ``bench/*.py --set`` passes), each VALUE read as the type of
    the recipe's value: ``with_overrides(FASTER_RCNN["cpu"], ["steps=300", "anchors=8,16,32"])``."""
    fields = dataclasses.asdict(recipe)  # type: ignore[call-overload]
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}, got {item!r}")
        old = fields[key]
        if value.lower() == "none":
            changes[key] = None
        elif isinstance(old, bool):
            changes[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(old, tuple):
            changes[key] = tuple(type(old[0])(v) for v in value.split(","))
        elif old is None:
            changes[key] = float(value) if "." in value else int(value)
        else:
            changes[key] = type(old)(value)
    return dataclasses.replace(recipe, **changes)  # type: ignore[type-var]
