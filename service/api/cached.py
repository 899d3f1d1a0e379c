"""Result caching for id-based requests: one place for the look-up / compute / store sequence.

The answer is serialised once, and the same JSON bytes go to the cache and to the client (a cache hit is
sent as stored), so neither path pays FastAPI's second validation and serialisation of the response model.
The route still declares `response_model` for the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Response
from pydantic import BaseModel, ValidationError

from service.cache import MeteredCache

M = TypeVar("M", bound=BaseModel)


class JSONBytes(Response):
    """A JSON body that is already serialised."""

    media_type = "application/json"


def json_response(model: BaseModel) -> JSONBytes:
    return JSONBytes(model.model_dump_json().encode())


async def cached_result(
    cache: MeteredCache, key: str, model: type[M], *, ttl_s: int, compute: Callable[[], Awaitable[M]]
) -> JSONBytes:
    """The cached answer for `key`, or compute it and store it for `ttl_s` seconds."""
    hit = await cache.get("result", key)
    if hit is not None:
        try:
            model.model_validate_json(hit)  # a stored answer must still be a valid `model` before it is sent
            return JSONBytes(hit)
        except ValidationError:
            # Written by another build against a shared Redis, or damaged: a miss, and gone for the next one.
            await cache.discard("result", key)
    body = (await compute()).model_dump_json().encode()
    await cache.set(key, body, ttl_s)
    return JSONBytes(body)

