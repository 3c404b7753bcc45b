"""Compare a student's result with the expected one, and describe values in words.

:func:`compare` returns ``None`` when ``got`` matches ``expected`` within tolerances, or a short text
that says what differs (type, shape, dtype, which element and by how much).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch


def describe(value: object) -> str:
    """``float32 tensor of shape (5, 3) on cpu``, ``int 4``, ``list of 3``, ... (never raises)."""
    try:
        return _describe(value)
    except Exception:  # noqa: BLE001 - an object that cannot even be looked at
        return type(value).__name__


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        text = f"{str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
        if value.device.type != "cpu":
            text += f" on {value.device}"
        if value.numel() <= 8 and value.device.type != "meta":
            values = value.detach().cpu()
            shown = np.round(values.double().numpy(), 4).tolist() if values.is_floating_point() else values.tolist()
            text += f" = {shown}"
        return text
    if isinstance(value, np.ndarray):
        return f"numpy {value.dtype} array of shape {value.shape}"
    if isinstance(value, (bool, int, float, str)) or value is None:
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, Mapping):
        return f"dict with keys {sorted(map(str, value))}"
    if isinstance(value, Sequence):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def _kind(d: torch.dtype) -> str:
    return "bool" if d == torch.bool else "float" if d.is_floating_point else "complex" if d.is_complex else "int"


_KIND_WORDS = {"bool": "a bool dtype", "float": "a floating-point dtype", "complex": "a complex dtype",
               "int": "an integer dtype"}


def compare_tensors(expected: torch.Tensor, got: object, rtol: float, atol: float, exact_dtype: bool) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"expected a tensor, got {describe(got)}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"wrong shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}"
    if exact_dtype and got.dtype != expected.dtype:
        return f"wrong dtype: expected {expected.dtype}, got {got.dtype}"
    if _kind(got.dtype) != _kind(expected.dtype):
        return f"wrong dtype: expected {_KIND_WORDS[_kind(expected.dtype)]} (like {expected.dtype}), got {got.dtype}"
    e, g = expected.detach().cpu(), got.detach().cpu()
    if e.numel() == 0:
        return None
    if e.is_floating_point() or e.is_complex():
        wide = torch.complex128 if e.is_complex() else torch.float64
        e, g = e.to(wide), g.to(wide)
        bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        bad = g != e
    if not bad.any():
        return None
    first = tuple(int(i) for i in bad.nonzero()[0])
    at = "" if e.ndim == 0 else f"; first at index {first if len(first) != 1 else first[0]}"
    nan = (e.isnan() != g.isnan()) if e.is_floating_point() else torch.zeros_like(bad)
    numbers = bad & ~nan
    parts = []
    if numbers.any() and e.dtype != torch.bool:                     # (bools: no difference to speak of)
        parts.append(f"max abs difference {(g - e).abs()[numbers].max().item():.4g}")
    if nan.any():
        parts.append(f"{int(nan.sum())} NaN where the other has a number")
    count = "the value differs" if e.ndim == 0 else f"{int(bad.sum())} of {e.numel()} values differ"
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{count}{detail}{at}: expected {_fmt(e[first].item())}, got {_fmt(g[first].item())}"


def _fmt(x: object) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def _compare_number(expected: int | float, got: object, rtol: float, atol: float) -> str | None:
    kind = "an int" if isinstance(expected, int) else "a float"
    if isinstance(got, torch.Tensor):
        return f"expected a Python number ({kind}, e.g. with .item()), got {describe(got)}"
    if isinstance(got, np.generic) and not isinstance(got, np.float64):
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"expected {kind} ({describe(expected)}), got {describe(got)}"
    if isinstance(expected, int) and not isinstance(got, int):
        return f"expected an int ({expected}), got a float {got!r}: return a whole number as an int"
    if isinstance(expected, float) and not isinstance(got, float):
        return f"expected a float ({expected:.6g}), got an int {got!r}: return float(...)"
    if math.isnan(expected) or math.isnan(got):
        return None if math.isnan(expected) and math.isnan(got) else f"expected {_fmt(expected)}, got {_fmt(got)}"
    if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
        return f"expected {_fmt(expected)}, got {_fmt(got)} (difference {abs(got - expected):.3g})"
    return None


def compare_sums(expected: torch.Tensor, got: object, rtol: float, atol: float, exact_dtype: bool = False,
                 path: str = "result") -> str | None:
    """:func:`compare` for a tensor of float32 sums whose terms may cancel (a convolution of values ~1e4 that
    comes to ~10, a gradient): the rounding of a sum is relative to its terms, not to a small total, so
    ``atol`` grows by ``rtol`` times the largest ``|expected|``. A wrong term still shows: it is of that size."""
    floating = isinstance(expected, torch.Tensor) and expected.is_floating_point() and expected.numel() > 0
    scale = float(expected.detach().abs().max()) if floating else 0.0
    return compare(expected, got, rtol, atol + rtol * scale, exact_dtype, path)


def compare(expected: object, got: object, rtol: float = 1e-5, atol: float = 1e-6,
            exact_dtype: bool = False, path: str = "result") -> str | None:
    """``None`` if ``got`` matches ``expected``, else what differs (``path`` names the part)."""
    if isinstance(expected, torch.Tensor):
        problem = compare_tensors(expected, got, rtol, atol, exact_dtype)
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        problem = None if got == expected and type(got) is type(expected) else \
            f"expected {describe(expected)}, got {describe(got)}"
    elif isinstance(expected, (int, float)):
        problem = _compare_number(expected, got, rtol, atol)
    elif isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{path}: expected a dict, got {describe(got)}"
        missing, extra = set(expected) - set(got), set(got) - set(expected)
        if missing or extra:
            return f"{path}: keys differ (missing {sorted(map(str, missing))}, unexpected {sorted(map(str, extra))})"
        for key in expected:
            problem = compare(expected[key], got[key], rtol, atol, exact_dtype, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    elif isinstance(expected, Sequence):
        if not isinstance(got, Sequence) or isinstance(got, (str, torch.Tensor)):
            return f"{path}: expected a {type(expected).__name__} of {len(expected)}, got {describe(got)}"
        if len(got) != len(expected):
            return f"{path}: expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = compare(e, g, rtol, atol, exact_dtype, f"{path}[{i}]")
            if problem:
                return problem
        return None
    else:
        problem = None if got == expected else f"expected {describe(expected)}, got {describe(got)}"
    return f"{path}: {problem}" if problem else None


def compare_fields(expected: Sequence, got: object, names: Sequence[str], rtol: float, atol: float) -> str | None:
    """``got`` must be a tuple of ``len(names)`` values, each matching ``expected``'s (named in messages)."""
    if not isinstance(got, (tuple, list)) or len(got) != len(names):
        return f"expected a tuple ({', '.join(names)}), got {describe(got)}"
    for name, e, value in zip(names, expected, got):
        problem = compare(e, value, rtol, atol, path=name)
        if problem:
            return problem
    return None


def snapshot(value: object) -> object:
    """A deep copy of tensors/arrays/layers inside ``value`` (to detect in-place changes later)."""
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, torch.Generator):  # so that one call does not consume another's random numbers
        return torch.Generator(device=value.device).set_state(value.get_state())
    if isinstance(value, Mapping):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value) if not hasattr(value, "_fields") else value
    return value


def unchanged(before: object, after: object) -> bool:
    """True if ``after`` holds the same values as the ``before`` snapshot (NaNs equal)."""
    if isinstance(before, torch.nn.Module):
        if not isinstance(after, torch.nn.Module) or type(after) is not type(before):
            return False
        a, b = before.state_dict(), after.state_dict()
        return a.keys() == b.keys() and all(unchanged(a[k], b[k]) for k in a)
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape or before.dtype != after.dtype:
            return False
        return bool(torch.equal(before, after) or
                    (before.is_floating_point() and torch.allclose(before, after, rtol=0, atol=0, equal_nan=True)))
    if isinstance(before, np.ndarray):
        return isinstance(after, np.ndarray) and np.array_equal(before, after, equal_nan=before.dtype.kind == "f")
    if isinstance(before, Mapping):
        return isinstance(after, Mapping) and before.keys() == after.keys() and all(
            unchanged(before[k], after[k]) for k in before)
    if isinstance(before, (list, tuple)):
        return isinstance(after, (list, tuple)) and len(before) == len(after) and all(map(unchanged, before, after))
    return True


def fingerprint(value: object) -> str | None:
    """A digest of everything ``value`` holds (tensors by dtype, shape, values and ``requires_grad``; generators
    by state; layers of ``torch.nn`` by their repr and state), equal for equal inputs; ``None`` for anything it
    cannot see into (a layer class of one's own, a function), which is then never taken as equal to anything."""
    digest = hashlib.blake2b(digest_size=16)

    def feed(v: object) -> bool:
        if isinstance(v, torch.Tensor):
            digest.update(f"T{v.dtype}{tuple(v.shape)}{v.requires_grad}{v.device.type}".encode())
            v = v.detach().cpu()
            digest.update((v.float() if v.dtype == torch.bfloat16 else v).contiguous().numpy().tobytes())
            return True
        if isinstance(v, torch.Generator):
            digest.update(f"G{v.device}".encode() + v.get_state().numpy().tobytes())
            return True
        if isinstance(v, np.ndarray):
            digest.update(f"N{v.dtype}{v.shape}".encode() + np.ascontiguousarray(v).tobytes())
            return True
        if isinstance(v, torch.nn.Module):
            if not all(type(m).__module__.startswith("torch.nn.") for m in v.modules()):
                return False
            digest.update(f"M{v!r}{v.training}".encode())
            return all(feed(t) for t in v.state_dict().values())
        if v is None or isinstance(v, (bool, int, float, str, torch.dtype, torch.device)):
            digest.update(repr((type(v).__name__, v)).encode())
            return True
        if isinstance(v, (list, tuple)):
            digest.update(f"L{type(v).__name__}{len(v)}".encode())
            return all(feed(x) for x in v)
        if isinstance(v, Mapping):
            digest.update(f"D{len(v)}".encode())
            return all(feed(k) and feed(x) for k, x in v.items())
        return False

    try:
        return digest.hexdigest() if feed(value) else None
    except (RuntimeError, TypeError, ValueError):   # a tensor numpy cannot hold (sparse, meta): not seen into
        return None
