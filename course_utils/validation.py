"""Input checks shared by every public function: clear errors instead of torch tracebacks.

One home for them: ``validation.tensor("x", x, ndim=4, dtypes="float")``,
``validation.integer("stride", stride, minimum=1)``, ``validation.size_pair("size", size)``, ...
Each returns the checked value, so a call can sit inside an expression.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch


def tensor(name: str, value: object, ndim: int | tuple[int, ...] | None = None,
           dtypes: str | None = None) -> torch.Tensor:
    """Raise a clear ``TypeError``/``ValueError`` unless ``value`` is a tensor of the expected kind.

    ``dtypes`` is ``"float"``, ``"int"`` (integer or bool) or ``None`` (anything).
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if value.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {tuple(value.shape)}")
    if dtypes == "float" and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    if dtypes == "int" and (value.is_floating_point() or value.is_complex()):
        raise TypeError(f"{name} must be an integer tensor (class labels), got {value.dtype}")
    return value


def integer(name: str, value: object, minimum: int | None = None) -> int:
    """``value`` as an int (bools and floats are refused), ``>= minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def int_at_least(name: str, value: object, minimum: int, what: str = "") -> int:
    """An int >= ``minimum`` (bools and floats refused) or a ``ValueError``; ``what`` adds a word of
    explanation (" (number of scenes)")."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{name} must be {kind}{what}, got {value!r}")
    return value


def positive_int(name: str, value: object) -> int:
    """An int >= 1 (``ValueError`` for anything else, as the configs expect)."""
    return int_at_least(name, value, 1)


def optional_positive_int(name: str, value: object) -> int | None:
    """``None``, or an int >= 1."""
    return None if value is None else int_at_least(name, value, 1, " or None")


def number(name: str, value: object, minimum: float | None = None, maximum: float | None = None,
           strict_minimum: bool = False) -> float:
    """A finite real number (not a bool) within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict_minimum else '>='} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return float(value)


def one_of(name: str, value: object, allowed: tuple) -> object:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def category_ids(name: str, ids: object) -> tuple[int, ...]:
    """A collection of category ids (ints >= 0, e.g. ``{3, 4}``) as a sorted tuple without repeats."""
    if isinstance(ids, (str, bytes, torch.Tensor)) or not isinstance(ids, Iterable):
        raise TypeError(f"{name} must be a collection of category ids (ints), e.g. {{3, 4}}, got {ids!r}")
    values = list(ids)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must contain int category ids, got {v!r} ({type(v).__name__})")
        if v < 0:
            raise ValueError(f"{name} must contain category ids >= 0, got {v}")
    return tuple(sorted(set(values)))


def images(name: str, x: object) -> torch.Tensor:
    """A float tensor ``N x C x H x W`` with a non-empty spatial size."""
    x = tensor(name, x, dtypes="float")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N x C x H x W), got shape {tuple(x.shape)}; "
                         f"add batch/channel dimensions with x[None] or x[None, None]")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} has an empty spatial size {tuple(x.shape[2:])}")
    return x


def size_pair(name: str, size: object, square: bool = False) -> tuple[int, int]:
    """A pair of positive ints ``(H, W)``; with ``square=True`` one int ``s`` also means ``(s, s)``."""
    if square and isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"{name} must be a pair (H, W) of ints, got {size!r}")
    return integer(f"{name}[0]", size[0], 1), integer(f"{name}[1]", size[1], 1)


def boxes(name: str, value: object) -> torch.Tensor:
    """A float tensor ``N x 4`` of boxes (any ``N``, including 0)."""
    value = tensor(name, value, ndim=2, dtypes="float")
    if value.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) (x1, y1, x2, y2 per row), got {tuple(value.shape)}")
    return value


def xyxy_boxes(name: str, value: object) -> torch.Tensor:
    """A float tensor ``N x 4`` of XYXY boxes: finite, with ``x1 <= x2`` and ``y1 <= y2``."""
    value = boxes(name, value)
    if value.numel():
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} must hold finite numbers, got NaN or infinity")
        bad = (value[:, 2] < value[:, 0]) | (value[:, 3] < value[:, 1])
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(f"{name} must be XYXY with x1 <= x2 and y1 <= y2; row {i} is "
                             f"{[round(v, 4) for v in value[i].tolist()]} (another format? see box_convert)")
    return value


def positive_numbers(name: str, values: object) -> list[float]:
    """A non-empty sequence of numbers > 0 (anchor sizes, aspect ratios), as a list of floats."""
    if isinstance(values, (int, float, str)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty sequence of numbers, e.g. (32, 64), got {values!r}")
    return [number(f"{name}[{i}]", v, minimum=0, strict_minimum=True) for i, v in enumerate(values)]
