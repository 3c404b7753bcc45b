"""What the browser tests share: Debian Chromium's flags, and JupyterLab started, waited for and stopped.

Toolchain facts behind it: Chromium runs headless as root with these flags and a fresh profile; JupyterLab
needs isolated config/settings folders (so no dialog blocks the page), a token, a fixed free loopback port,
and two SIGINTs to stop without its "shut down?" prompt.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER_SETTINGS = {   # dialogs that would block the page; every cell in the DOM (no virtual scrolling)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True, "windowingMode": "none"},
}


def chromium_path() -> str:
    """Debian's Chromium, or a failure that says how to install it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make browser-deps` "
                    "(or deselect these tests with -m 'not browser')")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, token: str, path: str, method: str = "GET"):
    """A call of JupyterLab's REST API; the decoded JSON reply (None if empty)."""
    request = urllib.request.Request(f"{base}/api/{path}?token={token}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@contextlib.contextmanager
def jupyterlab(argv: list[str], root: Path, config: Path, token: str, port: int) -> Iterator[str]:
    """Run ``argv`` (a ``jupyter lab`` command for ``port``) in ``root``; yield its base URL; stop it by pid.

    ``config`` is an empty folder for Jupyter's config, data, runtime and user settings.
    """
    for rel, body in USER_SETTINGS.items():
        target = config / "settings" / f"{rel}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(body))
    env = dict(os.environ, COURSE_PROFILE="ci", JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(config / "data"),
               JUPYTER_RUNTIME_DIR=str(config / "rt"), JUPYTERLAB_WORKSPACES_DIR=str(config / "ws"),
               JUPYTERLAB_SETTINGS_DIR=str(config / "settings"), JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    env.pop("COURSE_STRICT", None)
    argv = argv + ["--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={token}", "--LabApp.extension_manager=readonly"]
    log_path = config / "lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"JupyterLab exited:\n{log_path.read_text()[-3000:]}"
            try:
                api(base, token, "status")
                break
            except OSError:
                assert time.monotonic() < deadline, f"JupyterLab did not start:\n{log_path.read_text()[-3000:]}"
                time.sleep(0.5)
        yield base
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            time.sleep(0.5)
            server.send_signal(signal.SIGINT)          # the second SIGINT skips the "shut down?" prompt
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
