"""Integration: `outfit-compat serve` as a real uvicorn process, real Redis behind a proxy we can hang."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import image_corpus
import numpy as np
import pytest
from index_versions import publish_half
from redis_support import count_prefix, delete_prefix, new_prefix, redis_or_skip
from tcp_proxy import TcpProxy


def _photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    color = tuple(int(c) for c in rng.integers(0, 255, 3))
    return image_corpus._save(image_corpus.product_photo((48, 64), color), "JPEG", quality=90)


def _metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def index_copy(service_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy: the reload test publishes new versions into it."""
    dst = tmp_path_factory.mktemp("idxcopy") / "index"
    shutil.copytree(service_index, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def redis_server(
    start_server: Callable[..., Any], index_copy: Path, random_checkpoint: Path
) -> Iterator[tuple[Any, TcpProxy, str]]:
    redis_or_skip()
    from urllib.parse import urlparse

    url = urlparse(redis_or_skip())
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 6379))
    prefix = new_prefix()
    env = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0", "OUTFIT_CACHE_PREFIX": prefix,
           "OUTFIT_REDIS_TIMEOUT_S": "0.1", "OUTFIT_REDIS_RETRY_S": "0.5", "OUTFIT_BATCH_MAX_WAIT_MS": "20"}
    srv = start_server(env, ["--index", str(index_copy), "--checkpoint", str(random_checkpoint)])
    yield srv, proxy, prefix
    proxy.close()
    delete_prefix(prefix)


def _some_ids(url: str, n: int) -> list[str]:
    # Catalog ids from a photo query (the HTTP API is all this test knows about the catalog).
    r = httpx.post(url + "/v1/complementary", files={"image": ("a.jpg", _photo(0), "image/jpeg")},
                   data={"k": "40", "per_category": "5"}, timeout=30)
    out = [it["id"] for g in r.json()["groups"] for it in g["items"]]
    return out[:n]


def test_concurrent_uploads_are_micro_batched(redis_server: tuple[Any, TcpProxy, str]) -> None:
    srv, _, _ = redis_server
    before_sum = _metric(srv.url, "outfit_embed_batch_size_sum")
    before_count = _metric(srv.url, "outfit_embed_batch_size_count")

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
            rs = await asyncio.gather(*(
                c.post("/v1/embed", files={"image": (f"{i}.jpg", _photo(100 + i), "image/jpeg")}) for i in range(24)
            ))
        return [r.status_code for r in rs]

    assert asyncio.run(run()) == [200] * 24
    images = _metric(srv.url, "outfit_embed_batch_size_sum") - before_sum
    batches = _metric(srv.url, "outfit_embed_batch_size_count") - before_count
    assert images == 24 and batches < 24  # several uploads shared a forward pass


def test_redis_caches_and_a_hung_redis_never_fails_a_request(redis_server: tuple[Any, TcpProxy, str]) -> None:
    srv, proxy, prefix = redis_server
    ids = _some_ids(srv.url, 6)
    assert httpx.post(srv.url + "/v1/compatibility", json={"item_ids": ids[:3]}).status_code == 200
    assert count_prefix(prefix) >= 2  # the photo's embedding and the id-based result

    stop = threading.Event()
    statuses: list[int] = []
    latencies: list[float] = []

    def hammer() -> None:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            n = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                if n % 2:
                    r = c.post("/v1/compatibility", json={"item_ids": ids[n % 3: n % 3 + 3]})
                else:
                    r = c.post("/v1/embed", files={"image": ("x.jpg", _photo(500 + n), "image/jpeg")})
                latencies.append(time.perf_counter() - t0)
                statuses.append(r.status_code)
                n += 1

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(1.0)
        proxy.blackhole()  # Redis stops answering mid-run
        time.sleep(2.5)
        down = _metric(srv.url, "outfit_redis_up")
        errors = _metric(srv.url, "outfit_redis_errors_total")
        keys_during = count_prefix(prefix)
        time.sleep(0.5)
        assert count_prefix(prefix) == keys_during  # nothing reaches Redis while it hangs
        proxy.forward()
        time.sleep(2.0)
    finally:
        stop.set()
        worker.join()
    assert statuses and set(statuses) == {200}
    assert max(latencies) < 3.0
    assert down == 0.0 and errors >= 1
    assert _metric(srv.url, "outfit_redis_up") == 1.0
    assert count_prefix(prefix) > keys_during  # recovered: new entries reach Redis again


def test_reload_swaps_index_while_serving(redis_server: tuple[Any, TcpProxy, str], index_copy: Path) -> None:
    srv, _, _ = redis_server
    old = httpx.get(srv.url + "/readyz").json()
    # Publish a new version holding half of the items (the reader gives back their stored vectors).
    keep = publish_half(index_copy)
    query = [keep[0].item_id]
    stop = threading.Event()
    statuses: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            n = 0
            while not stop.is_set():
                statuses.append(c.post("/v1/complementary", json={"item_ids": query, "k": 5}).status_code)
                n += 1  # uploads in flight across the swap finish on the old model
                statuses.append(c.post("/v1/embed", files={"image": ("u.jpg", _photo(7000 + n), "image/jpeg")})
                                .status_code)

    threads = [threading.Thread(target=hammer) for _ in range(3)]

    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        assert httpx.post(srv.url + "/v1/admin/reload").status_code == 401
        assert httpx.post(srv.url + "/v1/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 403
        r = httpx.post(srv.url + "/v1/admin/reload", headers={"X-API-Key": "s3cret"}, timeout=60)
        assert r.status_code == 200, r.text
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    new = httpx.get(srv.url + "/readyz").json()
    assert new["index_version"] != old["index_version"] and new["items"] == len(keep)
    assert r.json()["previous"]["index_version"] == old["index_version"]
    assert _metric(srv.url, 'outfit_reloads_total{outcome="ok"}') == 1.0


def test_full_queue_answers_503_with_retry_after(start_server: Callable[..., Any]) -> None:
    # The worker waits 300 ms for companions while the queue holds only 2 images: the rest must bounce.
    srv = start_server({"OUTFIT_BATCH_QUEUE_SIZE": "2", "OUTFIT_BATCH_MAX_SIZE": "64",
                        "OUTFIT_BATCH_MAX_WAIT_MS": "300", "OUTFIT_RETRY_AFTER_S": "2"})

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
            return list(await asyncio.gather(*(
                c.post("/v1/embed", files={"image": (f"{i}.jpg", _photo(900 + i), "image/jpeg")}) for i in range(12)
            )))

    responses = asyncio.run(run())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503} and 200 in codes and 503 in codes
    rejected = [r for r in responses if r.status_code == 503]
    assert all(r.headers["Retry-After"] == "2" and r.json()["error"]["code"] == "overloaded" for r in rejected)
    assert _metric(srv.url, "outfit_embed_rejected_total") == len(rejected)
    assert httpx.get(srv.url + "/healthz").status_code == 200


def test_serve_refuses_a_missing_index(tmp_path: Path) -> None:
    from service.cli import serve

    with pytest.raises(FileNotFoundError, match="does not exist"):
        serve(host="127.0.0.1", port=1, index=tmp_path / "none")
    with pytest.raises(FileNotFoundError, match=r"checkpoint .* does not exist"):
        serve(host="127.0.0.1", port=1, index=tmp_path, checkpoint=tmp_path / "no-ckpt")
