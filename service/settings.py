"""Service configuration: one pydantic-settings class read from environment variables.

Every field maps to `OUTFIT_<NAME>` except `REDIS_URL`, the conventional name. Nothing reads the
environment at import time: `Settings()` is built by the CLI (or a test) and passed to `create_app`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTFIT_", extra="ignore", frozen=True)

    # What to serve. The checkpoint defaults to the one recorded in the index manifest.
    index: Path | None = Field(default=None, description="published index directory")
    checkpoint: Path | None = Field(default=None, description="embedder checkpoint directory")
    backend: str | None = Field(default=None, description="inference backend; default: the index's")
    torch_threads: int | None = Field(default=None, ge=1, le=64)
    # FAISS threads per search; requests run concurrently, so one each is the right default.
    search_threads: int = Field(default=1, ge=1, le=64)
    # Requests whose index work (searches, re-ranking, scoring) runs at once; unset: two per CPU this process may
    # run on. Many more only contend for the GIL; one per CPU left uploads unbatched (docs/SERVICE.md,
    # "Index workers").
    index_workers: int | None = Field(default=None, ge=1, le=256)

    # Cache: Redis when REDIS_URL is set, otherwise an in-process LRU.
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "OUTFIT_REDIS_URL"))
    cache_prefix: str = "outfit:"
    cache_embedding_ttl_s: int = Field(default=7 * 24 * 3600, ge=1)
    cache_result_ttl_s: int = Field(default=600, ge=1)
    lru_entries: int = Field(default=4096, ge=1)
    # The local cache is bounded in bytes too (keys + values): a few large answers cannot take the memory.
    lru_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # A Redis that does not answer within this budget is treated as down for `redis_retry_s`.
    redis_timeout_s: float = Field(default=0.1, gt=0, le=10)
    redis_retry_s: float = Field(default=2.0, gt=0, le=300)

    # Micro-batching of upload embeddings.
    batch_max_size: int = Field(default=32, ge=1, le=1024)
    batch_max_wait_ms: float = Field(default=5.0, ge=0, le=1000)
    batch_queue_size: int = Field(default=256, ge=1)
    retry_after_s: int = Field(default=1, ge=1)

    # Upload limits: requests over max_request_bytes are refused with 413 before they are read.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_request_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    # Longest side and aspect ratio an upload may declare (422 before decoding; a strip is no product photo).
    max_image_side: int = Field(default=12_000, ge=16)
    max_image_aspect: float = Field(default=20.0, ge=1.0)
    # Decodes of uploads over decode_large_pixels (after JPEG draft scaling) share decode_large_slots slots:
    # their memory is bounded, and small photos never wait behind them.
    decode_large_pixels: int = Field(default=2_000_000, ge=1)
    decode_large_slots: int = Field(default=2, ge=1, le=64)

    # uvicorn (set by `outfit-compat serve`): connections + requests in progress beyond `max_connections` are
    # answered 503 at once; an idle keep-alive connection is closed after `keep_alive_s`. Clients that send
    # headers or bodies slowly are a reverse proxy's job (docs/SERVICE.md).
    max_connections: int = Field(default=512, ge=1)
    keep_alive_s: int = Field(default=5, ge=1, le=300)

    # Every worker follows a newly published version of the index root (its `current` link) within this many
    # seconds, so several workers never answer from different versions for long; 0 turns it off.
    index_watch_s: float = Field(default=5.0, ge=0, le=3600)
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    # A file the workers of one service share: an admin reload writes what it loaded there and the other
    # workers' watchers load the same within index_watch_s (service/reload_signal.py). `outfit-compat serve
    # --workers N` makes one in a private temporary directory when unset.
    reload_signal: Path | None = Field(default=None, description="shared reload signal file of the workers")

    admin_api_key: SecretStr | None = Field(default=None, description="enables POST /v1/admin/reload")
    # Per-stage durations in a `Server-Timing` response header (docs/SERVICE.md); off hides them from clients.
    server_timing: bool = True

    @property
    def resolved_index_workers(self) -> int:
        return self.index_workers or 2 * usable_cpus()

    @field_validator("index", "checkpoint", "backend", "redis_url", "admin_api_key", "reload_signal", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `OUTFIT_CHECKPOINT=` in a compose file or .env means "not set", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under `taskset` or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
