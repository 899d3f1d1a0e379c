"""Process state behind `app.state.service`: settings, metrics, cache and the swappable Engine."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from embedder.image_io import ImageLimits
from service.cache import MeteredCache
from service.engine import Engine, EngineLoadError, load_engine
from service.errors import NotReadyError, ServiceError, clip
from service.metrics import ServiceMetrics
from service.reload_signal import ReloadSignal
from service.settings import Settings
from service.uploads import DecodeGate

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    metrics: ServiceMetrics
    cache: MeteredCache
    engine: Engine | None = None
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    decode_gate: DecodeGate = field(init=False)
    reload_signal: ReloadSignal | None = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.decode_gate = DecodeGate(large_pixels=s.decode_large_pixels, slots=s.decode_large_slots)
        self.reload_signal = ReloadSignal(s.reload_signal) if s.reload_signal is not None else None

    @property
    def image_limits(self) -> ImageLimits:
        s = self.settings
        return ImageLimits(max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels, max_side=s.max_image_side,
                           max_aspect=s.max_image_aspect)

    def require_engine(self) -> Engine:
        engine = self.engine
        if engine is None:
            raise NotReadyError("no model and index are loaded yet; see GET /readyz")
        return engine

    async def load(self, *, index: Path, checkpoint: Path | None) -> Engine:
        s = self.settings
        engine = await run_in_threadpool(
            load_engine,
            index_root=index,
            checkpoint=checkpoint,
            backend=s.backend,
            batch_max_size=s.batch_max_size,
            batch_max_wait_s=s.batch_max_wait_ms / 1000.0,
            queue_size=s.batch_queue_size,
            retry_after_s=s.retry_after_s,
            metrics=self.metrics,
            search_threads=s.search_threads,
            index_workers=s.resolved_index_workers,
        )
        engine.batcher.start()
        return engine

    async def reload(self, *, index: Path | None, checkpoint: Path | None) -> tuple[Engine | None, Engine]:
        """Load the new engine beside the old one, then swap the reference in one assignment.

        Requests already holding the old engine finish on it; its batcher is drained, then closed.
        """
        if self.reload_lock.locked():
            raise ServiceError("a reload is already running; retry when it finishes", code="reload_running",
                               status=409)
        async with self.reload_lock:
            previous = self.engine
            target = index or (previous.index_root if previous else self.settings.index)
            if target is None:
                raise ServiceError("no index to load: pass 'index' or set OUTFIT_INDEX", code="no_index",
                                   status=422)
            ckpt = checkpoint or self.settings.checkpoint
            try:
                engine = await self.load(index=target, checkpoint=ckpt)
            except Exception as e:
                # Whatever broke (a malformed manifest, a truncated file, a bug in a loader), the old engine
                # keeps serving and the failure is counted: every load failure is a 409, never a 500.
                self.metrics.reloads.labels(outcome="failed").inc()
                if isinstance(e, ServiceError):
                    raise
                log.exception("reload of %s failed", target)
                raise EngineLoadError(f"cannot load {target}: {type(e).__name__}: {clip(str(e), 500)}") from e
            self.engine = engine
            self.metrics.ready.set(1)
            self.metrics.reloads.labels(outcome="ok").inc()
            if previous is not None:
                await previous.aclose()
            log.info("reloaded: model %s index %s", engine.model_version, engine.index_version)
            return previous, engine

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.aclose()
        await self.cache.close()
