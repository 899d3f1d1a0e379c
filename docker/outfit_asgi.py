"""ASGI factory for uvicorn's own CLI, the API image's command:

    uvicorn --factory --app-dir /opt/outfit outfit_asgi:create_app_from_env

Why not `outfit-compat serve`: it hands uvicorn an app object, which can run only one process and
ignores uvicorn's environment options. uvicorn's CLI takes WEB_CONCURRENCY and every UVICORN_* option
(limit-concurrency, backlog, timeouts, host, port) from the environment, and calls this factory in each
worker, so every worker loads its own model and index after the fork. Settings come from OUTFIT_* and
REDIS_URL, exactly as for `outfit-compat serve`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.settings import Settings


def check_paths(settings: Settings) -> None:
    """Fail at startup with the variable to fix, before the lifespan's loader reports a deeper error."""
    if settings.index is None:
        raise FileNotFoundError("no index to serve: set OUTFIT_INDEX to a published index directory")
    if not settings.index.exists():
        raise FileNotFoundError(
            f"OUTFIT_INDEX={settings.index} does not exist; build it with `outfit-compat index build`"
        )
    if settings.checkpoint is not None and not settings.checkpoint.exists():
        raise FileNotFoundError(f"OUTFIT_CHECKPOINT={settings.checkpoint} does not exist")


def create_app_from_env() -> FastAPI:
    from service.app import create_app
    from service.settings import Settings

    settings = Settings()
    check_paths(settings)
    return create_app(settings)
