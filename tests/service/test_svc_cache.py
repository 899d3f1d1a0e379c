"""Caches: the local LRU, the real Redis, and degradation to the local cache while Redis hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from redis_support import count_prefix, delete_prefix, new_prefix, redis_or_skip
from tcp_proxy import TcpProxy

from service.cache import LocalLRU, MeteredCache, RedisCache, build_cache
from service.cache_keys import KEY_VERSION
from service.metrics import ServiceMetrics


def test_lru_evicts_least_recently_used() -> None:
    lru = LocalLRU(max_entries=2)
    lru.set_now("a", b"1", 60)
    lru.set_now("b", b"2", 60)
    assert lru.get_now("a") == b"1"  # a is now the most recent
    lru.set_now("c", b"3", 60)
    assert lru.get_now("b") is None and lru.get_now("a") == b"1" and lru.get_now("c") == b"3"
    assert len(lru) == 2


def test_lru_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    lru = LocalLRU(max_entries=4)
    lru.set_now("a", b"1", 5)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6)
    assert lru.get_now("a") is None and len(lru) == 0


def test_lru_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LocalLRU(max_entries=0)


def test_metered_cache_counts_hits_and_misses() -> None:
    metrics = ServiceMetrics()
    cache = MeteredCache(LocalLRU(max_entries=8), metrics=metrics, prefix="p:")

    async def run() -> None:
        assert await cache.get("embedding", "k") is None
        await cache.set("k", b"v", 60)
        assert await cache.get("embedding", "k") == b"v"

    asyncio.run(run())
    sample = metrics.registry.get_sample_value
    assert sample("outfit_cache_lookups_total", {"kind": "embedding", "result": "hit"}) == 1.0
    assert sample("outfit_cache_lookups_total", {"kind": "embedding", "result": "miss"}) == 1.0
    assert sample("outfit_cache_hit_ratio") == 0.5


@pytest.fixture()
def redis_prefix() -> Iterator[str]:
    redis_or_skip()
    prefix = new_prefix()
    yield prefix
    delete_prefix(prefix)


def test_redis_cache_round_trip_with_ttl(redis_prefix: str) -> None:
    metrics = ServiceMetrics()
    cache = build_cache(redis_url=redis_or_skip(), metrics=metrics, prefix=redis_prefix, lru_entries=8,
                        timeout_s=1.0, retry_s=1.0)
    assert cache.name == "redis"

    async def run() -> None:
        await cache.set("emb:x", b"\x00\x01", 30)
        assert await cache.get("result", "emb:x") == b"\x00\x01"
        await cache.close()

    asyncio.run(run())
    import redis

    client = redis.Redis.from_url(redis_or_skip())
    assert client.get(redis_prefix + "emb:x") == b"\x00\x01"
    assert 0 < int(client.ttl(redis_prefix + "emb:x")) <= 30
    assert count_prefix(redis_prefix) == 1


def test_hung_redis_degrades_to_local_cache_then_recovers(redis_prefix: str) -> None:
    url = urlparse(redis_or_skip())
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 6379))
    metrics = ServiceMetrics()
    local = LocalLRU(max_entries=16)
    cache = RedisCache(f"redis://127.0.0.1:{proxy.port}/0", metrics=metrics, fallback=local, timeout_s=0.1,
                       retry_s=0.3)
    key = redis_prefix + "k"

    async def run() -> None:
        await cache.set(key, b"v1", 60)
        assert await cache.get(key) == b"v1"
        proxy.blackhole()
        t0 = time.perf_counter()
        assert await cache.get(key) == b"v1"  # served from the local copy after a short timeout
        assert time.perf_counter() - t0 < 1.0
        assert metrics.registry.get_sample_value("outfit_redis_up") == 0.0
        t0 = time.perf_counter()
        for _ in range(20):  # while marked down, Redis is not even tried: no timeout per request
            await cache.get(key)
        assert time.perf_counter() - t0 < 0.1
        await cache.set(redis_prefix + "during", b"x", 60)  # writes go to the local copy only
        proxy.forward()
        await asyncio.sleep(0.35)
        await cache.set(redis_prefix + "after", b"y", 60)
        assert await cache.get(redis_prefix + "after") == b"y"
        assert metrics.registry.get_sample_value("outfit_redis_up") == 1.0
        await cache.close()

    try:
        asyncio.run(run())
    finally:
        proxy.close()
    errors = metrics.registry.get_sample_value("outfit_redis_errors_total", {"op": "get"})
    assert errors is not None and errors >= 1
    import redis

    client = redis.Redis.from_url(redis_or_skip())
    assert client.get(redis_prefix + "after") == b"y"
    assert client.get(redis_prefix + "during") is None


def test_unreachable_redis_never_raises() -> None:
    metrics = ServiceMetrics()
    cache = build_cache(redis_url="redis://127.0.0.1:1/0", metrics=metrics, prefix="x:", lru_entries=4,
                        timeout_s=0.1, retry_s=5.0)

    async def run() -> None:
        await cache.set("a", b"1", 60)
        assert await cache.get("embedding", "a") == b"1"

    asyncio.run(run())
    assert metrics.registry.get_sample_value("outfit_redis_up") == 0.0


def test_app_keys_uploads_by_content_hash_and_model_version(make_settings: Any, redis_prefix: str) -> None:
    import hashlib

    import image_corpus
    import redis
    from fastapi.testclient import TestClient

    from service.app import create_app

    # A generous Redis budget: on a loaded machine 0.1 s answers time out and the test would see the fallback.
    settings = make_settings(redis_url=redis_or_skip(), cache_prefix=redis_prefix, cache_embedding_ttl_s=300,
                             cache_result_ttl_s=60, redis_timeout_s=2.0)
    photo = image_corpus.jpeg_bytes((40, 52))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        engine = c.app.state.service.engine
        r = c.post("/v1/embed", files={"image": ("a.jpg", photo, "image/jpeg")})
        assert r.status_code == 200 and r.json()["cached"] is False
    client = redis.Redis.from_url(redis_or_skip())
    key = f"{redis_prefix}{KEY_VERSION}:emb:{engine.model_version}:fp32:{hashlib.sha256(photo).hexdigest()}"
    assert client.exists(key) and 250 < int(client.ttl(key)) <= 300
    assert len(client.get(key) or b"") == 4 * engine.index.dim  # float32 vector
    # A new app process (empty local cache) finds the embedding in Redis.
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert c.post("/v1/embed", files={"image": ("b.jpg", photo, "image/jpeg")}).json()["cached"] is True
        ids = [h.item_id for h in engine.index.search(np.eye(1, engine.index.dim, dtype=np.float32), k=3)[0]]
        assert c.post("/v1/compatibility", json={"item_ids": ids}).status_code == 200
    result_keys = list(client.scan_iter(match=f"{redis_prefix}{KEY_VERSION}:res:compatibility:{engine.cache_scope}:*"))
    assert len(result_keys) == 1 and 0 < int(client.ttl(result_keys[0])) <= 60


def test_lru_is_bounded_in_bytes_as_well_as_entries() -> None:
    lru = LocalLRU(max_entries=1000, max_bytes=10_000)
    for i in range(50):
        lru.set_now(f"k{i}", b"x" * 1000, 60)
    assert lru.bytes <= 10_000 and len(lru) == 9  # 9 x (2-3 byte key + 1000) fit, the oldest went first
    assert lru.get_now("k49") is not None and lru.get_now("k0") is None
    lru.set_now("huge", b"x" * 20_000, 60)  # larger than the whole cache: not stored, nothing evicted
    assert lru.get_now("huge") is None and len(lru) == 9
    lru.set_now("k49", b"y", 60)  # replacing an entry releases its old size
    assert lru.bytes == sum(len(k) + len(v) for k, (_, v) in lru._data.items())


def _redis_settings(make_settings: Any, prefix: str) -> Any:
    return make_settings(redis_url=redis_or_skip(), cache_prefix=prefix, cache_embedding_ttl_s=300,
                         cache_result_ttl_s=60, redis_timeout_s=2.0)


def _known_ids(engine: Any, n: int) -> list[str]:
    return [h.item_id for h in engine.index.search(np.eye(1, engine.index.dim, dtype=np.float32), k=n)[0]]


def test_result_keys_are_a_short_digest_of_the_canonical_request(make_settings: Any, redis_prefix: str) -> None:
    """1,000 long `exclude` ids used to become a 200 KB key; now every key is a fixed-length digest."""
    import redis
    from fastapi.testclient import TestClient

    from service.app import create_app

    exclude = [f"{n:04d}" + "x" * 196 for n in range(1000)]
    with TestClient(create_app(_redis_settings(make_settings, redis_prefix)), raise_server_exceptions=False) as c:
        engine = c.app.state.service.engine
        ids = _known_ids(engine, 2)
        for body in ({"item_ids": ids[:1], "exclude": exclude}, {"item_ids": ids[:1], "exclude": exclude[:999]}):
            assert c.post("/v1/complementary", json=body).status_code == 200
        local = c.app.state.service.cache.inner.fallback
        assert local.bytes < 200_000  # keys are digests: the two answers, not 2 x 200 KB of request
    client = redis.Redis.from_url(redis_or_skip())
    keys = [k.decode() for k in client.scan_iter(match=f"{redis_prefix}*res:complementary:*")]
    assert len(keys) == 2  # different requests, different digests
    assert all(k.startswith(f"{redis_prefix}{KEY_VERSION}:res:complementary:{engine.cache_scope}:") for k in keys)
    assert max(len(k) for k in keys) < 200


def test_stale_or_malformed_entries_are_misses_and_are_deleted(make_settings: Any, redis_prefix: str) -> None:
    """What another build (or a damaged write) left in a shared Redis is recomputed, never a 500."""
    import hashlib

    import image_corpus
    import redis
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.cache_keys import embedding_key

    client = redis.Redis.from_url(redis_or_skip())
    settings = _redis_settings(make_settings, redis_prefix)
    photo = image_corpus.jpeg_bytes((44, 52))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        engine = c.app.state.service.engine
        ids = _known_ids(engine, 3)
        good = c.post("/v1/compatibility", json={"item_ids": ids})
        assert good.status_code == 200
    (result_key,) = client.scan_iter(match=f"{redis_prefix}*res:compatibility:*")
    emb_key = redis_prefix + embedding_key(model_version=engine.model_version, backend_family="fp32",
                                           content_sha256=hashlib.sha256(photo).hexdigest())
    stale_answers = [b'{"score": "high"}', b"not json", b'{"items": []}']
    stale_vectors = [b"\x00" * 8, np.full(engine.index.dim, np.nan, dtype=np.float32).tobytes(),
                     np.zeros(engine.index.dim, dtype=np.float32).tobytes()]
    for answer, vector in zip(stale_answers, stale_vectors, strict=True):
        client.set(result_key, answer, ex=60)
        client.set(emb_key, vector, ex=60)
        # A fresh process: its local cache is empty, so the stale bytes come from Redis.
        with TestClient(create_app(settings), raise_server_exceptions=False) as c:
            r = c.post("/v1/compatibility", json={"item_ids": ids})
            assert r.status_code == 200 and r.json() == good.json()
            e = c.post("/v1/embed", files={"image": ("a.jpg", photo, "image/jpeg")})
            assert e.status_code == 200 and e.json()["cached"] is False
            sample = c.app.state.service.metrics.registry.get_sample_value
            assert sample("outfit_cache_lookups_total", {"kind": "result", "result": "invalid"}) == 1.0
            assert sample("outfit_cache_lookups_total", {"kind": "embedding", "result": "invalid"}) == 1.0
        # Replaced by the recomputed values.
        assert client.get(result_key) == r.content
        assert np.allclose(np.frombuffer(client.get(emb_key) or b"", dtype=np.float32), e.json()["embedding"])


def test_result_scope_is_the_index_content_not_its_version_name() -> None:
    from types import SimpleNamespace

    from service.engine import Engine

    def engine(files: dict[str, Any], version: str = "v000001-20261130T000000Z", backend: str = "torch") -> Any:
        index = SimpleNamespace(manifest={"files": files}, version=version)
        model = SimpleNamespace(card=SimpleNamespace(model_version="m1"), name=backend)
        return Engine(backend=model, index=index, calibration=None, calibrated=False, batcher=None,
                      index_root=None, checkpoint=None)

    a = {"items.sqlite": {"sha256": "aa", "bytes": 1}}
    b = {"items.sqlite": {"sha256": "bb", "bytes": 1}}
    # Two roots published in the same second share the version name; their contents differ.
    assert engine(a).cache_scope != engine(b).cache_scope
    assert engine(a).cache_scope == engine(a, version="v000009-20261201T000000Z").cache_scope
    assert engine(a, backend="onnx").cache_scope == engine(a).cache_scope  # one numeric family
    assert engine(a, backend="onnx-int8").cache_scope != engine(a).cache_scope
