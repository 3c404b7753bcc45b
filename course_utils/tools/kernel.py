"""The one notebook executor of the course tools (``course build``, ``course slides``, ``course grade``,
``bench/_notebook_run.py``): nbclient's ``NotebookClient``, less a hang.

nbclient waits for a cell's reply with ``shell_channel.get_msg(timeout=None)``. A ZeroMQ socket signals new
messages edge-triggered, so a wake-up consumed by another operation on the socket is lost and that wait never
ends although the reply has arrived: nbclient issue #312 ("when cell contains ipywidget, execute cell will
sometimes block", open; PR #311 proposes polling). Seen here: labs 01 and 03's ``interactive`` slider cells
hung every time on a 16-core GPU machine (the kernel idle, its reply sent; 2026-12-04), never on 2 cores.
:class:`NotebookClient` below waits in steps of ``poll_seconds`` instead: each step polls the socket afresh,
so a reply that is there is read within one step.
"""

from __future__ import annotations

from queue import Empty
from time import monotonic
from typing import Any

from nbclient import NotebookClient as _NbclientNotebookClient
from nbclient.util import run_sync

#: longest wait on a kernel channel before the socket is polled afresh
POLL_SECONDS = 1.0


def _get_msg_in_steps(get_msg: Any, step: float) -> Any:
    """``get_msg`` (an async channel's), waiting at most ``step`` seconds per poll of the socket."""

    async def get_msg_in_steps(*args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            wait = step if deadline is None else max(0.0, min(step, deadline - monotonic()))
            try:
                return await get_msg(*args, timeout=wait, **kwargs)
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise

    return get_msg_in_steps


class NotebookClient(_NbclientNotebookClient):
    """nbclient's client whose waits on the shell and IOPub channels cannot miss a message (see the module)."""

    poll_seconds: float = POLL_SECONDS

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = _get_msg_in_steps(channel.get_msg, self.poll_seconds)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)   # the sync name (setup_kernel) too
