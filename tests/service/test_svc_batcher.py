"""The micro-batcher: concurrent requests share forward passes, the queue is bounded, close drains."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from service.batcher import MicroBatcher
from service.errors import OverloadedError
from service.metrics import ServiceMetrics


class RecordingModel:
    """Embeds by summing channels (so results are checkable) and records every batch size."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay_s = delay_s
        self.threads: set[str] = set()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(len(x))
        self.threads.add(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        return x.reshape(len(x), -1).sum(axis=1, keepdims=True).astype(np.float32)


def _img(v: float) -> np.ndarray:
    return np.full((3, 2, 2), v, dtype=np.float32)


def test_concurrent_requests_are_batched_and_answered_in_order() -> None:
    model = RecordingModel()
    metrics = ServiceMetrics()

    async def run() -> list[np.ndarray]:
        b = MicroBatcher(model, max_batch=8, max_wait_s=0.05, queue_size=64, metrics=metrics)
        b.start()
        out = await asyncio.gather(*(b.embed(_img(float(i))) for i in range(20)))
        await b.close()
        return out

    out = asyncio.run(run())
    assert [float(o[0]) for o in out] == [12.0 * i for i in range(20)]
    assert sum(model.batches) == 20
    assert max(model.batches) == 8 and len(model.batches) <= 4
    assert model.threads and not any(t == "MainThread" for t in model.threads)  # off the event loop
    assert metrics.registry.get_sample_value("outfit_embed_batch_size_count") == len(model.batches)


def test_a_lone_request_waits_at_most_max_wait() -> None:
    model = RecordingModel()

    async def run() -> float:
        b = MicroBatcher(model, max_batch=32, max_wait_s=0.02, queue_size=8)
        b.start()
        t0 = time.perf_counter()
        await b.embed(_img(1.0))
        elapsed = time.perf_counter() - t0
        await b.close()
        return elapsed

    assert asyncio.run(run()) < 0.5
    assert model.batches == [1]


def test_lone_requests_on_an_idle_service_are_not_held_back() -> None:
    """Waiting for companions that are not coming is pure latency: the wait applies only under load."""
    model = RecordingModel()

    async def run() -> tuple[float, bool, bool]:
        b = MicroBatcher(model, max_batch=32, max_wait_s=30.0, queue_size=64)
        b.start()
        t0 = time.perf_counter()
        for i in range(3):
            await b.embed(_img(float(i)))
        lone = time.perf_counter() - t0
        idle_gathers = b.gathers_companions()
        await asyncio.gather(*(b.embed(_img(float(i))) for i in range(4)))  # a burst: one batch of 4
        busy_gathers = b.gathers_companions()
        await b.close()
        return lone, idle_gathers, busy_gathers

    lone, idle_gathers, busy_gathers = asyncio.run(run())
    assert lone < 10.0  # nowhere near one 30 s wait, let alone three
    assert model.batches == [1, 1, 1, 4]
    assert not idle_gathers and busy_gathers


def test_full_queue_rejects_at_once_with_retry_after() -> None:
    model = RecordingModel(delay_s=0.2)
    metrics = ServiceMetrics()

    async def run() -> None:
        b = MicroBatcher(model, max_batch=2, max_wait_s=0.0, queue_size=4, metrics=metrics, retry_after_s=3)
        b.start()
        first = asyncio.ensure_future(b.embed_many([_img(1.0), _img(2.0)]))
        await asyncio.sleep(0.05)  # the worker now holds those two in a forward pass
        queued = asyncio.ensure_future(b.embed_many([_img(3.0)] * 4))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as err:
            await b.embed(_img(4.0))
        assert err.value.status == 503 and err.value.headers["Retry-After"] == "3"
        assert (await first).shape == (2, 1) and (await queued).shape == (4, 1)
        await b.close()

    asyncio.run(run())
    assert metrics.registry.get_sample_value("outfit_embed_rejected_total") == 1.0


def test_close_finishes_queued_work_and_late_requests_still_answer() -> None:
    model = RecordingModel(delay_s=0.01)

    async def run() -> None:
        b = MicroBatcher(model, max_batch=2, max_wait_s=0.0, queue_size=16)
        with pytest.raises(RuntimeError, match="start"):
            await b.embed(_img(0.0))  # never started
        b.start()
        pending = asyncio.ensure_future(asyncio.gather(*(b.embed(_img(float(i))) for i in range(6))))
        await asyncio.sleep(0)
        await b.close()
        assert len(await pending) == 6
        # A request holding an engine that a reload just retired still gets its embedding.
        assert float((await b.embed(_img(2.0)))[0]) == 24.0

    asyncio.run(run())
    assert sum(model.batches) == 7


def test_model_errors_reach_every_waiting_request() -> None:
    def broken(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    async def run() -> None:
        b = MicroBatcher(broken, max_batch=4, max_wait_s=0.01, queue_size=8)
        b.start()
        results = await asyncio.gather(b.embed(_img(1.0)), b.embed(_img(2.0)), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        await b.close()

    asyncio.run(run())


@pytest.mark.parametrize("kw", [{"max_batch": 0}, {"queue_size": 0}, {"max_wait_s": -1.0}])
def test_bad_configuration_is_refused(kw: dict[str, float]) -> None:
    args: dict[str, float] = {"max_batch": 4, "max_wait_s": 0.01, "queue_size": 4, **kw}
    with pytest.raises(ValueError):
        MicroBatcher(RecordingModel(), **args)  # type: ignore[arg-type]


def test_prepared_upload_on_an_idle_batcher_runs_in_one_call_on_the_model_thread() -> None:
    """Idle: decoding (`prepare`) and the forward pass share one trip to the model thread."""
    model = RecordingModel()
    metrics = ServiceMetrics()
    prepared_on: list[str] = []

    def prepare() -> np.ndarray:
        prepared_on.append(threading.current_thread().name)
        return _img(2.0)

    async def run() -> np.ndarray:
        b = MicroBatcher(model, max_batch=8, max_wait_s=0.05, queue_size=8, metrics=metrics)
        b.start()
        assert b.idle
        out = await b.embed_prepared(prepare)
        assert b.idle
        await b.close()
        return out

    assert float(asyncio.run(run())[0]) == 24.0
    assert model.batches == [1]
    assert prepared_on == list(model.threads) and prepared_on[0].startswith("embed")
    assert metrics.registry.get_sample_value("outfit_embed_batch_size_count") == 1.0


def test_prepared_uploads_under_load_join_batches() -> None:
    """Busy: later uploads decode in the threadpool and queue, so they batch behind the running pass."""
    model = RecordingModel(delay_s=0.1)

    async def run() -> list[np.ndarray]:
        b = MicroBatcher(model, max_batch=8, max_wait_s=0.0, queue_size=16)
        b.start()
        first = asyncio.ensure_future(b.embed_prepared(lambda: _img(1.0)))
        await asyncio.sleep(0.02)  # the first pass now runs on the model thread
        assert not b.idle
        rest = [b.embed_prepared(lambda v=float(i): _img(v)) for i in range(2, 6)]
        out = await asyncio.gather(first, *rest)
        await b.close()
        return out

    out = asyncio.run(run())
    assert [float(o[0]) for o in out] == [12.0 * v for v in (1, 2, 3, 4, 5)]
    assert model.batches[0] == 1 and sum(model.batches) == 5 and len(model.batches) < 5


def test_prepare_errors_propagate_and_leave_the_batcher_usable() -> None:
    class BadImage(ValueError):
        pass

    def bad() -> np.ndarray:
        raise BadImage("not an image")

    model = RecordingModel()

    async def run() -> float:
        b = MicroBatcher(model, max_batch=4, max_wait_s=0.0, queue_size=4)
        b.start()
        with pytest.raises(BadImage):
            await b.embed_prepared(bad)
        assert b.idle
        out = await b.embed_prepared(lambda: _img(1.0))
        await b.close()
        return float(out[0])

    assert asyncio.run(run()) == 12.0
    assert model.batches == [1]


def test_close_never_blocks_the_event_loop_while_an_upload_runs() -> None:
    """close() used to call executor.shutdown(wait=True) on the loop: a reload stalled every request."""
    release = threading.Event()
    started = threading.Event()

    def slow_prepare() -> np.ndarray:
        started.set()
        release.wait(10)  # the upload on the model thread, held until the loop has proven it is free
        return _img(1.0)

    # Safety net: if the loop is blocked, nothing on it can release the upload; this thread does, late.
    fallback = threading.Timer(3.0, release.set)

    async def run() -> tuple[int, bool, float]:
        b = MicroBatcher(RecordingModel(), max_batch=4, max_wait_s=0.0, queue_size=8)
        b.start()
        upload = asyncio.ensure_future(b.embed_prepared(slow_prepare))
        while not started.is_set():
            await asyncio.sleep(0.005)
        fallback.start()
        closing = asyncio.ensure_future(b.close())
        ticks = 0
        for _ in range(20):  # the loop must keep running other work while close() waits for the upload
            await asyncio.sleep(0.01)
            ticks += 1
        still_running = not release.is_set()
        release.set()
        row = await upload
        await closing
        return ticks, still_running, float(row[0])

    try:
        ticks, still_running, value = asyncio.run(run())
    finally:
        fallback.cancel()
    assert ticks == 20 and still_running  # 20 loop turns happened while the upload still held the model thread
    assert value == 12.0  # and it finished normally
