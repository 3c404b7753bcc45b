"""Call a student's function with a time limit, and say where an exception came from."""

from __future__ import annotations

import linecache
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TimeLimitExceeded(BaseException):
    """Raised inside a student's function that runs too long (a BaseException, so that a bare
    ``except Exception`` in the student's code cannot swallow it)."""


def call_with_time_limit(fn: Callable[..., Any], args: tuple, kwargs: dict, seconds: float) -> Any:
    """``fn(*args, **kwargs)``, interrupted with :class:`TimeLimitExceeded` after ``seconds``.

    In the main thread on Unix this uses a real-time timer signal; elsewhere (Windows, threads) a
    trace function that checks the clock on every line of Python code.
    """
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        def on_alarm(signum: int, frame: object) -> None:
            raise TimeLimitExceeded(f"took longer than {seconds:g} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    deadline = time.monotonic() + seconds

    def tracer(frame: object, event: str, arg: object) -> Callable | None:
        if time.monotonic() > deadline:
            raise TimeLimitExceeded(f"took longer than {seconds:g} s")
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        return fn(*args, **kwargs)
    finally:
        sys.settrace(old)


def _is_library(filename: str) -> bool:
    path = os.path.abspath(filename)
    return (path.startswith(_PACKAGE_DIR + os.sep) or "site-packages" in path or "dist-packages" in path
            or path.startswith(os.path.dirname(os.__file__)))


def where_raised(exc: BaseException) -> str:
    """``in `assign`, line 4: d = x[idx]`` for the deepest frame in the student's code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_library(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    text = f"in `{frame.name}`, line {frame.lineno}"
    return f"{text}: {line}" if line else text


def raised_in(exc: BaseException) -> str:
    """Name of the function (any code) where the exception was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1].name if frames else "?"
