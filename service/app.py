"""App factory: `create_app(settings)`; the lifespan loads model + index onto `app.state.service`."""

from __future__ import annotations

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

from service.api.routes import complementary, complete, embed, items, ops, outfits, web
from service.cache import build_cache
from service.errors import ServiceError
from service.metrics import ServiceMetrics
from service.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.settings import Settings
from service.state import AppState
from service.timing import ServerTimingMiddleware

log = logging.getLogger(__name__)
API_VERSION = "1.0.0"


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
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
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
            lru_entries=settings.lru_entries, timeout_s=settings.redis_timeout_s, retry_s=settings.redis_retry_s,
        )
        state = AppState(settings=settings, metrics=metrics, cache=cache)
        app.state.service = state
        if load and settings.index is not None:
            state.engine = await state.load(index=settings.index, checkpoint=settings.checkpoint)
            metrics.ready.set(1)
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="outfit-compat",
        version=API_VERSION,
        description="Fashion compatibility: complementary items, outfit scores and fill-in-the-blank.",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    for module in (complementary, outfits, complete, embed, items, ops, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(resources.files("service").joinpath("static"))), name="static")
    # Outermost first: metrics see every response, including 413s from the body limit.
    if settings.server_timing:
        app.add_middleware(ServerTimingMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
