"""course_utils.tools.kernel: the course's NotebookClient cannot miss a reply that has arrived (nbclient #312)."""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import nbformat
import pytest

from course_utils.tools.kernel import NotebookClient, _get_msg_in_steps


class MissedWakeUpChannel:
    """A channel whose message is there, but a wait without a timeout never hears of it (the lost edge of a
    ZeroMQ socket); a wait with a timeout polls afresh and finds it."""

    def __init__(self, message=None):
        self.message = message
        self.calls: list[float | None] = []

    async def get_msg(self, timeout=None):
        self.calls.append(timeout)
        if timeout is None:
            await asyncio.Event().wait()        # never woken
        if self.message is not None:
            return self.message
        await asyncio.sleep(timeout)
        raise Empty


def test_a_reply_that_has_arrived_is_read_although_its_wake_up_was_lost():
    channel = MissedWakeUpChannel({"msg_id": "reply"})
    get_msg = _get_msg_in_steps(channel.get_msg, 0.05)
    assert asyncio.run(asyncio.wait_for(get_msg(timeout=None), 5)) == {"msg_id": "reply"}
    assert channel.calls == [0.05]                 # never an unbounded wait


def test_a_finite_timeout_still_raises_empty_at_its_deadline():
    channel = MissedWakeUpChannel()
    get_msg = _get_msg_in_steps(channel.get_msg, 0.05)
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(get_msg(timeout=0.2))
    assert time.monotonic() - started >= 0.2
    assert len(channel.calls) >= 3 and all(0 <= c <= 0.05 for c in channel.calls)


def test_the_course_client_runs_a_widget_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import ipywidgets as widgets\n"
                                  "w = widgets.interactive(lambda k=3: print('k is', k), k=(1, 5))\n"
                                  "display(w)"),
        nbformat.v4.new_code_cell("print('after the widget')"),
    ])
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    with client.setup_kernel():
        for channel in (client.kc.shell_channel, client.kc.iopub_channel):   # the waits go in steps
            assert channel.get_msg.__name__ == "get_msg_in_steps"
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    texts = [o.get("text", "") for cell in nb.cells for o in cell.outputs]
    assert "after the widget\n" in texts
    widget = nb.cells[0].outputs[0]
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
