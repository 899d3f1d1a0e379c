"""Shared by the HTTP benchmarks: wait for a freshly started `outfit-compat serve` process to be ready."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, *, timeout_s: float = 180) -> None:
    """Poll /readyz until 200; exit with the server's log tail if it dies or never gets ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server not ready after {timeout_s:.0f} s")
