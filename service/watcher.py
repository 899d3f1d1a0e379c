"""Follow newly published index versions: every worker process reloads itself when `current` moves.

An admin reload reaches the one worker that answers it; with several uvicorn workers the others would keep
serving the old version. Each worker therefore checks its index root's `current` link every
`OUTFIT_INDEX_WATCH_S` seconds (a `readlink`, on the event loop: no I/O beyond one syscall) and, when it
points to another version than the one loaded, reloads through the same path as the admin endpoint (load
beside, swap, drain; a failure is counted and the old engine keeps serving, retried at the next change).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from service.state import AppState

log = logging.getLogger(__name__)


def published_version(index_root: Path) -> str | None:
    """The version directory name `current` points to; None when the root is a version directory itself."""
    try:
        return Path(os.readlink(index_root / "current")).name
    except OSError:
        return None


async def watch_index(state: AppState, interval_s: float) -> None:
    failed: str | None = None  # a version that failed to load is retried only once `current` moves again
    while True:
        await asyncio.sleep(interval_s)
        engine = state.engine
        if engine is None or state.reload_lock.locked():
            continue
        version = published_version(engine.index_root)
        if version is None or version in (engine.index.root.name, failed):
            continue
        log.info("index root %s now publishes %s; reloading", engine.index_root, version)
        try:
            await state.reload(index=None, checkpoint=None)
            failed = None
        except Exception as e:  # counted by reload(); keep watching
            log.warning("following %s failed: %s", version, e)
            failed = version
