"""Follow newly published index versions and admin reloads: every worker process reloads itself.

An admin reload reaches the one worker that answers it; with several uvicorn workers the others would keep
serving the old version. Each worker therefore checks, every `OUTFIT_INDEX_WATCH_S` seconds,
- its index root's `current` link (a `readlink`, on the event loop: one syscall), and reloads when it points
  to another version than the one loaded;
- the reload signal the workers share (`OUTFIT_RELOAD_SIGNAL`, service/reload_signal.py), and loads what an
  admin reload in another worker loaded (another index root or checkpoint) when it has not yet.
Both reload through the same path as the admin endpoint (load beside, swap, drain; a failure is counted and
the old engine keeps serving; a failed version or order is retried only once it changes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from service.engine import Engine
from service.reload_signal import ReloadOrder
from service.state import AppState

log = logging.getLogger(__name__)


def published_version(index_root: Path) -> str | None:
    """The version directory name `current` points to; None when the root is a version directory itself."""
    try:
        return Path(os.readlink(index_root / "current")).name
    except OSError:
        return None


def serves(engine: Engine, order: ReloadOrder) -> bool:
    """Whether `engine` already serves what `order` asks for (e.g. this worker followed `current` already)."""
    if Path(engine.index_root) != order.index:
        return False
    if order.checkpoint is not None and order.checkpoint != engine.checkpoint:
        return False
    version = published_version(order.index)
    return version is None or version == engine.index.root.name


async def _follow_order(state: AppState, engine: Engine, followed: set[str], started: float) -> bool:
    """Load what another worker's admin reload loaded; True when an order was acted on."""
    order = await asyncio.to_thread(state.reload_signal.read) if state.reload_signal is not None else None
    # Orders from before this worker started are its configuration's business, not its to follow.
    if order is None or order.id in followed or order.by_worker == os.getpid() or order.at < started:
        return False
    followed.add(order.id)
    if serves(engine, order):
        return False
    log.info("worker %d reloaded %s; following", order.by_worker, order.index)
    try:
        await state.reload(index=order.index, checkpoint=order.checkpoint)
    except Exception as e:  # counted by reload(); keep watching
        log.warning("following the admin reload of %s failed: %s", order.index, e)
    return True


async def watch_index(state: AppState, interval_s: float) -> None:
    failed: str | None = None  # a version that failed to load is retried only once `current` moves again
    followed: set[str] = set()
    started = time.time()
    while True:
        await asyncio.sleep(interval_s)
        engine = state.engine
        if engine is None or state.reload_lock.locked():
            continue
        if await _follow_order(state, engine, followed, started):
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
