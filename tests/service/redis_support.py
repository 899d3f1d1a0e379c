"""The real Redis the tests use (127.0.0.1:6379 unless TEST_REDIS_URL says otherwise); skip if none answers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_or_skip() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as e:
        pytest.skip(f"no Redis reachable at {REDIS_URL}: {e}")
    return REDIS_URL


def new_prefix() -> str:
    return f"outfit-test:{secrets.token_hex(4)}:"


def delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)


def count_prefix(prefix: str) -> int:
    import redis

    return sum(1 for _ in redis.Redis.from_url(REDIS_URL, socket_timeout=2).scan_iter(match=prefix + "*"))


def prefix_fixture() -> Iterator[str]:
    prefix = new_prefix()
    yield prefix
    delete_prefix(prefix)
