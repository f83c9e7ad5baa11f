"""Helpers for tests that run ``anytask serve`` as a real process (to kill it with -9)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    """``anytask serve`` on the tiny backbone, returned once ``/healthz`` answers (or an error after 60 s)."""
    import httpx

    env = {**os.environ, "ANYTASK_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "anytask", "serve", "--backbone", "tiny", "--home", str(home),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
