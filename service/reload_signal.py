"""The admin reload reaches every worker: the worker that answers it writes a signal file the others watch.

`POST /v1/admin/reload` lands on one uvicorn worker. After its reload succeeds, that worker writes what it
loaded (index root, requested checkpoint, a fresh id) to `OUTFIT_RELOAD_SIGNAL`, a file every worker of the
service shares (`outfit-compat serve --workers N` makes one in a private temporary directory). Each worker's
index watcher (service/watcher.py) reads it every `OUTFIT_INDEX_WATCH_S` and reloads the same way when it
sees an id it has not followed yet, so within the interval plus a load every worker serves what the admin
asked for: another index root, another checkpoint, or the root's newly published version.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from embedder.files import write_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadOrder:
    id: str
    index: Path
    checkpoint: Path | None
    by_worker: int
    at: float  # time.time() when written


class ReloadSignal:
    """One shared file; `publish` replaces it atomically, `read` returns the last order (None if none/unreadable)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, *, index: Path, checkpoint: Path | None) -> ReloadOrder:
        order = ReloadOrder(id=uuid.uuid4().hex, index=index, checkpoint=checkpoint, by_worker=os.getpid(),
                            at=time.time())
        payload = {"id": order.id, "index": str(index), "checkpoint": str(checkpoint) if checkpoint else None,
                   "by_worker": order.by_worker, "at": order.at}
        write_atomic(self.path, json.dumps(payload).encode())
        return order

    def read(self) -> ReloadOrder | None:
        try:
            raw = json.loads(self.path.read_bytes())
            return ReloadOrder(id=str(raw["id"]), index=Path(raw["index"]),
                               checkpoint=Path(raw["checkpoint"]) if raw.get("checkpoint") else None,
                               by_worker=int(raw["by_worker"]), at=float(raw["at"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:  # a torn or foreign file: ignored, not fatal
            log.warning("ignoring unreadable reload signal %s: %s", self.path, e)
            return None
