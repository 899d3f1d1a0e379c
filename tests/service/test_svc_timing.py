"""Server-Timing: per-request stage durations in the response header, in process and over real HTTP."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from service.timing import StageTimes, parse_header, stage


def test_header_round_trips_and_repeated_stages_add_up() -> None:
    times = StageTimes()
    times.add("decode", 0.001)
    times.add("decode", 0.0005)
    times.add("embed", 0.002)
    assert parse_header(times.header()) == {"decode": 1.5, "embed": 2.0}
    assert parse_header('cache;desc="Redis", db;dur=53, bad;dur=x, ;dur=1') == {"db": 53.0}


def _header_of(app: Any) -> dict[str, float]:
    """Run one HTTP request through the middleware around `app`; the parsed Server-Timing header."""
    from service.timing import ServerTimingMiddleware

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ServerTimingMiddleware(app)({"type": "http"}, None, send))
    headers = [v for k, v in sent[0]["headers"] if k == b"server-timing"]
    assert len(headers) == 1
    return parse_header(headers[0].decode())


async def _empty_response(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_stage_outside_a_request_runs_the_block_and_records_nothing() -> None:
    ran: list[str] = []
    with stage("decode"):
        ran.append("decode")
    assert ran == ["decode"]
    with pytest.raises(ValueError, match="bad"), stage("decode"):
        raise ValueError("bad")  # errors pass through unchanged
    # Nothing was kept anywhere: the next request's header holds only its own `app` stage.
    assert set(_header_of(_empty_response)) == {"app"}


def test_stages_timed_in_worker_threads_reach_the_request() -> None:
    from starlette.concurrency import run_in_threadpool

    def work() -> None:
        with stage("decode"):
            pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await run_in_threadpool(work)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"server-timing", b"stale")]})
        await send({"type": "http.response.body", "body": b""})

    assert set(_header_of(app)) == {"decode", "app"}  # one header: the app's stale one was replaced


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_upload_response_names_its_stages(client: Any) -> None:
    r = client.post("/v1/complementary", files={"image": ("a.jpg", _jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text
    stages = parse_header(r.headers["server-timing"])
    assert {"form", "decode", "embed", "index", "app"} <= set(stages)
    inner = stages["form"] + stages["embed"] + stages["index"]
    assert all(v >= 0 for v in stages.values()) and inner <= stages["app"]
    # A repeated upload hits the embedding cache: no decode and no forward pass.
    again = parse_header(client.post("/v1/complementary", files={"image": ("a.jpg", _jpeg(), "image/jpeg")})
                         .headers["server-timing"])
    assert "decode" not in again and "embed" not in again


def test_a_lone_upload_is_decoded_on_the_model_thread(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle fast path is what the route uses: decoding is timed inside the embedding call."""
    import threading

    import service.uploads as uploads

    seen: list[str] = []
    original = uploads.decode_to_input

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(uploads, "decode_to_input", recording)  # a spy: the real decoder still runs
    photo = io.BytesIO()
    Image.new("RGB", (64, 80), (200, 30, 30)).save(photo, "PNG")
    r = client.post("/v1/complementary", files={"image": ("b.png", photo.getvalue(), "image/png")})
    assert r.status_code == 200, r.text
    assert len(seen) == 1 and seen[0].startswith("embed")  # the batcher's model thread, not the threadpool


def test_server_timing_can_be_switched_off(make_settings: Any) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(make_settings(server_timing=False))) as c:
        r = c.post("/v1/complementary", files={"image": ("a.jpg", _jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert "server-timing" not in r.headers
