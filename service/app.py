"""App factory: `create_app(settings)`; the lifespan loads model + index onto `app.state.service`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.openapi import install_openapi
from service.api.routes import complementary, complete, embed, items, ops, outfits, web
from service.cache import build_cache
from service.engine import Engine
from service.errors import ServiceError, clip
from service.metrics import ServiceMetrics
from service.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.schemas import API_VERSION
from service.settings import Settings
from service.state import AppState
from service.timing import ServerTimingMiddleware
from service.watcher import watch_index

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status,
                        headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Nothing the client sent is echoed in full: a location can be an unknown JSON key of any length.
        errors = [
            {"loc": [clip(str(p)) for p in e.get("loc", ())], "msg": clip(str(e.get("msg", "")), 300),
             "type": str(e.get("type", ""))}
            for e in exc.errors()[:50]
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "request body is not valid JSON", details=errors)
        summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return _error(422, "invalid_request", summary or "invalid request", details=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


def create_app(settings: Settings, *, load: bool = True) -> FastAPI:
    """Build the app. With `load`, startup loads settings.index (and checkpoint) and fails if it cannot."""
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.torch_threads:
            import torch

            torch.set_num_threads(settings.torch_threads)
        cache = build_cache(
            redis_url=settings.redis_url, metrics=metrics, prefix=settings.cache_prefix,
            lru_entries=settings.lru_entries, lru_bytes=settings.lru_bytes, timeout_s=settings.redis_timeout_s,
            retry_s=settings.redis_retry_s,
        )
        state = AppState(settings=settings, metrics=metrics, cache=cache)
        app.state.service = state
        watcher: asyncio.Task[None] | None = None
        if load and settings.index is not None:
            state.engine = await state.load(index=settings.index, checkpoint=settings.checkpoint)
            metrics.ready.set(1)
            if settings.index_watch_s > 0:
                watcher = asyncio.create_task(watch_index(state, settings.index_watch_s), name="index-watcher")
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await state.close()

    app = FastAPI(
        title="outfit-compat",
        version=API_VERSION,
        description="Fashion compatibility: complementary items, outfit scores and fill-in-the-blank.",
        lifespan=lifespan,
    )
    _install_error_handlers(app)

    def loaded_engine() -> Engine | None:
        state: AppState | None = getattr(app.state, "service", None)
        return state.engine if state is not None else None

    install_openapi(app, loaded_engine)
    for module in (complementary, outfits, complete, embed, items, ops, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(resources.files("service").joinpath("static"))), name="static")
    # Outermost first: metrics see every response, including 413s from the body limit.
    if settings.server_timing:
        app.add_middleware(ServerTimingMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """The app of one worker process of `outfit-compat serve --workers N` (uvicorn's factory): settings from
    the environment, which the parent process completed with its command-line options."""
    return create_app(Settings())
