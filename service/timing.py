"""Per-request stage timings, returned in the standard `Server-Timing` response header.

A request's stages (form parsing, decode, embedding, search, ...) are recorded into one `StageTimes`
held in a context variable; the context is copied into threadpool work, so stages timed in worker threads
land in the same record. `ServerTimingMiddleware` adds `app` (the whole time inside the application,
serialisation included) and writes the header, e.g. `form;dur=0.21, decode;dur=0.85, app;dur=3.9`.
Browsers' developer tools and the upload benchmark read it to split latency into server stages and the
rest (network, HTTP parsing, client).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"server-timing"


class StageTimes:
    """Milliseconds per stage name; a stage entered twice adds up (e.g. two decoded uploads)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + seconds * 1000.0

    def header(self) -> str:
        return ", ".join(f"{name};dur={ms:.3f}" for name, ms in self.ms.items())


_current: ContextVar[StageTimes | None] = ContextVar("outfit_stage_times", default=None)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage `name` of the current request; a no-op outside a request."""
    times = _current.get()
    if times is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        times.add(name, time.perf_counter() - started)


def parse_header(value: str) -> dict[str, float]:
    """`a;dur=1.5, b;dur=2` -> {"a": 1.5, "b": 2.0}; entries without a duration are skipped."""
    out: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (p.strip() for p in entry.split(";"))
        for p in params:
            key, _, num = p.partition("=")
            if name and key.strip() == "dur":
                try:
                    out[name] = float(num)
                except ValueError:
                    continue
    return out


class ServerTimingMiddleware:
    """Opens a StageTimes per HTTP request and writes it, plus `app`, into the Server-Timing header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        times = StageTimes()
        token = _current.set(times)
        started = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                times.add("app", time.perf_counter() - started)
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, times.header().encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _current.reset(token)
