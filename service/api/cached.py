"""Result caching for id-based requests: one place for the look-up / compute / store sequence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel

from service.cache import MeteredCache

M = TypeVar("M", bound=BaseModel)


async def cached_result(
    cache: MeteredCache, key: str, model: type[M], *, ttl_s: int, compute: Callable[[], Awaitable[M]]
) -> M:
    """The cached response for `key`, or compute it and store it for `ttl_s` seconds."""
    hit = await cache.get("result", key)
    if hit is not None:
        return model.model_validate_json(hit)
    resp = await compute()
    await cache.set(key, resp.model_dump_json().encode(), ttl_s)
    return resp
