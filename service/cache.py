"""Byte caches for upload embeddings and id-based results.

`LocalLRU` is the embedded default. `RedisCache` wraps the shared Redis with short timeouts: when Redis
stops answering, lookups fall back to a local LRU, an error metric is counted, and Redis is retried after
`retry_s` so the service recovers on its own when Redis returns. A cache failure never fails a request.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

from service.metrics import ServiceMetrics

log = logging.getLogger(__name__)


class Cache(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class LocalLRU:
    """In-process LRU with per-entry expiry (monotonic clock), bounded in entries and in bytes."""

    name = "local"

    def __init__(self, *, max_entries: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0  # keys + values held; entry counts alone let a few huge answers take any amount
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    @staticmethod
    def _size(key: str, value: bytes) -> int:
        return len(key) + len(value)

    def _pop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self.bytes -= self._size(key, value)

    def get_now(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._pop(key)
            return None
        self._data.move_to_end(key)
        return value

    def set_now(self, key: str, value: bytes, ttl_s: int) -> None:
        if key in self._data:
            self._pop(key)
        size = self._size(key, value)
        if size > self.max_bytes:
            return  # larger than the whole cache: not worth evicting everything for
        self._data[key] = (time.monotonic() + ttl_s, value)
        self.bytes += size
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            self._pop(next(iter(self._data)))

    def delete_now(self, key: str) -> None:
        if key in self._data:
            self._pop(key)

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self.set_now(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        self.delete_now(key)

    async def close(self) -> None:
        self._data.clear()
        self.bytes = 0


class RedisCache:
    """Redis with a local fallback; every Redis error is logged once per outage and counted."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        metrics: ServiceMetrics,
        fallback: LocalLRU,
        timeout_s: float = 0.1,
        retry_s: float = 2.0,
    ) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self.metrics = metrics
        self.fallback = fallback
        self.retry_s = retry_s
        self._down_until = 0.0
        metrics.redis_up.set(1)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _mark_down(self, op: str, err: Exception) -> None:
        if self.available:
            log.warning("redis %s failed (%s: %s); using the local cache for %.1fs", op, type(err).__name__, err,
                        self.retry_s)
        self.metrics.redis_errors.labels(op=op).inc()
        self.metrics.redis_up.set(0)
        self._down_until = time.monotonic() + self.retry_s

    def _mark_up(self) -> None:
        if self._down_until:
            log.info("redis answering again")
            self._down_until = 0.0
        self.metrics.redis_up.set(1)

    async def get(self, key: str) -> bytes | None:
        if not self.available:
            return self.fallback.get_now(key)
        try:
            value = await self._client.get(key)
        except Exception as e:  # any client/network error: degrade, never fail the request
            self._mark_down("get", e)
            return self.fallback.get_now(key)
        self._mark_up()
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        # Keep a local copy too, so an outage does not turn every cached query into a miss at once.
        self.fallback.set_now(key, value, ttl_s)
        if not self.available:
            return
        try:
            await self._client.set(key, value, ex=ttl_s)
        except Exception as e:
            self._mark_down("set", e)
            return
        self._mark_up()

    async def delete(self, key: str) -> None:
        self.fallback.delete_now(key)
        if not self.available:
            return
        try:
            await self._client.delete(key)
        except Exception as e:
            self._mark_down("delete", e)
            return
        self._mark_up()

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except Exception as e:  # closing a dead connection must not block shutdown
            log.debug("redis close: %s", e)


class MeteredCache:
    """Counts hits and misses per kind of entry (embedding / result) around any cache."""

    def __init__(self, inner: Cache, *, metrics: ServiceMetrics, prefix: str) -> None:
        self.inner = inner
        self.metrics = metrics
        self.prefix = prefix
        self._hits = 0
        self._lookups = 0

    @property
    def name(self) -> str:
        return self.inner.name

    async def get(self, kind: str, key: str) -> bytes | None:
        value = await self.inner.get(self.prefix + key)
        self._lookups += 1
        result = "miss" if value is None else "hit"
        if value is not None:
            self._hits += 1
        self.metrics.cache_lookups.labels(kind=kind, result=result).inc()
        self.metrics.cache_hit_ratio.set(self._hits / self._lookups)
        return value

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        await self.inner.set(self.prefix + key, value, ttl_s)

    async def discard(self, kind: str, key: str) -> None:
        """Drop an entry that was found unusable (stale format, wrong size): counted, then a miss."""
        self.metrics.cache_lookups.labels(kind=kind, result="invalid").inc()
        log.warning("dropping an unusable %s cache entry %s", kind, key[:80])
        await self.inner.delete(self.prefix + key)

    async def close(self) -> None:
        await self.inner.close()


def build_cache(
    *, redis_url: str | None, metrics: ServiceMetrics, prefix: str, lru_entries: int, timeout_s: float,
    retry_s: float, lru_bytes: int = 64 * 1024 * 1024,
) -> MeteredCache:
    local = LocalLRU(max_entries=lru_entries, max_bytes=lru_bytes)
    inner: Cache = local
    if redis_url:
        inner = RedisCache(redis_url, metrics=metrics, fallback=local, timeout_s=timeout_s, retry_s=retry_s)
    return MeteredCache(inner, metrics=metrics, prefix=prefix)
