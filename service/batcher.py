"""Micro-batching of upload embeddings: concurrent requests share one forward pass, off the event loop.

Requests enqueue preprocessed images and await a future. One worker task takes up to `max_batch` images
and runs the forward pass on a dedicated thread. It waits for companions (at most `max_wait_s` after the
oldest job arrived) only while requests are arriving concurrently, i.e. when the previous batch had more
than one image: a lone request on an idle service is dispatched at once, since waiting would be pure
latency, and under load the queue fills while a batch runs anyway. The queue is bounded: when it is
full, `submit` raises OverloadedError at once (HTTP 503 with Retry-After) instead of letting latency
grow without limit.

`embed_prepared` is the single-upload entry: on an idle batcher (nothing queued, no forward pass running)
the upload's decoding and its forward pass run in one call on the model thread, one thread round trip
instead of two; otherwise it decodes in the threadpool and joins the queue like any other image.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.errors import OverloadedError
from service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

EmbedFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class _Job:
    image: np.ndarray
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    def __init__(
        self,
        embed_fn: EmbedFn,
        *,
        max_batch: int,
        max_wait_s: float,
        queue_size: int,
        metrics: ServiceMetrics | None = None,
        retry_after_s: int = 1,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or max_wait_s < 0:
            raise ValueError("max_batch and queue_size must be >= 1 and max_wait_s >= 0")
        self.embed_fn = embed_fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self.metrics = metrics
        self.retry_after_s = retry_after_s
        self._pending: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._last_batch_size = 0
        self._in_flight = 0  # forward passes submitted to the model thread and not finished

    @property
    def depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the worker on the running event loop (call from async code)."""
        if self._worker is not None:
            return
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def embed_many(self, images: list[np.ndarray]) -> np.ndarray:
        """(3, S, S) float32 images -> (n, d) embeddings; all-or-nothing admission to the queue."""
        if self._closing:
            # A request that took this engine just before a reload swapped it out: finish it on the old
            # model, unbatched, rather than failing it.
            return await asyncio.get_running_loop().run_in_executor(None, self.embed_fn, np.stack(images))
        if self._worker is None or self._wakeup is None:
            raise RuntimeError("MicroBatcher is not running: call start() first")
        self.check_room(len(images))
        loop = asyncio.get_running_loop()
        jobs = [_Job(im, loop.create_future()) for im in images]
        self._pending.extend(jobs)
        self._set_depth()
        self._wakeup.set()
        return np.stack(await asyncio.gather(*(j.future for j in jobs)))

    def check_room(self, n: int) -> None:
        """Raise OverloadedError now if n more images do not fit (callers check before decoding, too)."""
        if len(self._pending) + n > self.queue_size:
            if self.metrics is not None:
                self.metrics.rejected.inc(n)
            raise OverloadedError(
                f"embedding queue is full ({len(self._pending)}/{self.queue_size} images waiting); retry shortly",
                retry_after_s=self.retry_after_s,
            )

    def gathers_companions(self) -> bool:
        """Whether the next batch waits for more jobs: only when the last one had company."""
        return self.max_wait_s > 0 and self._last_batch_size > 1

    async def embed(self, image: np.ndarray) -> np.ndarray:
        return (await self.embed_many([image]))[0]

    @property
    def idle(self) -> bool:
        return self._worker is not None and not self._closing and not self._pending and self._in_flight == 0

    async def embed_prepared(self, prepare: Callable[[], np.ndarray]) -> np.ndarray:
        """Embed one image that `prepare()` produces (e.g. decodes); its errors propagate unchanged."""
        if not self.idle:
            return await self.embed(await run_in_threadpool(prepare))
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # stage timings recorded in the model thread reach the request
        self._in_flight += 1
        self._last_batch_size = 1
        started = time.perf_counter()
        try:
            row: np.ndarray = await loop.run_in_executor(self._executor, ctx.run, self._prepare_and_embed, prepare)
        finally:
            self._in_flight -= 1
            if self._wakeup is not None:
                self._wakeup.set()
        self._observe(1, started)
        return row

    def _prepare_and_embed(self, prepare: Callable[[], np.ndarray]) -> np.ndarray:
        image = prepare()
        return self.embed_fn(image[None])[0]

    def _observe(self, size: int, started: float) -> None:
        if self.metrics is not None:
            self.metrics.batch_size.observe(size)
            self.metrics.batch_latency.observe(time.perf_counter() - started)

    def _set_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(len(self._pending))

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._in_flight:
                # A lone upload's forward pass is running (embed_prepared): let the queue fill meanwhile, as
                # it does behind one of our own batches, instead of sending a batch of one after it.
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Wait for companions (only under concurrent load) until the oldest job has waited max_wait_s.
            deadline = self._pending[0].enqueued + self.max_wait_s
            while self.gathers_companions() and len(self._pending) < self.max_batch and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
            batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            self._last_batch_size = len(batch)
            self._set_depth()
            # Requests whose client went away are dropped before the forward pass.
            batch = [j for j in batch if not j.future.done()]
            if not batch:
                continue
            started = time.perf_counter()
            self._in_flight += 1
            try:
                out = await loop.run_in_executor(self._executor, self.embed_fn, np.stack([j.image for j in batch]))
            except Exception as e:
                log.exception("embedding batch of %d failed", len(batch))
                for j in batch:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            finally:
                self._in_flight -= 1
            self._observe(len(batch), started)
            for j, row in zip(batch, out, strict=True):
                if not j.future.done():
                    j.future.set_result(row)

    async def close(self) -> None:
        """Finish what is queued, then stop the worker thread; later calls are embedded unbatched."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._worker is not None:
            await self._worker
            self._worker = None
        if self._executor is not None:
            # A lone upload may still be running on the model thread: wait for it in another thread, never on
            # the event loop (a blocking shutdown here stalled every request during a reload).
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(None, functools.partial(executor.shutdown, wait=True))
