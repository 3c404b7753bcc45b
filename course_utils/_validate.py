"""Small input checks shared by the public functions: clear errors instead of torch tracebacks."""

from __future__ import annotations

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


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value
