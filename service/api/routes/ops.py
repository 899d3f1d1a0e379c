"""Operations: /healthz, /readyz, /metrics and the authenticated POST /v1/admin/reload."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.api.deps import StateDep
from service.api.parsing import media_type, parse_json, unsupported
from service.api.responses import errors
from service.errors import AuthError, ServiceError
from service.schemas import HealthResponse, ReadyResponse, ReloadRequest, ReloadResponse

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=HealthResponse, summary="The process is up")
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}},
            summary="A model and an index are loaded")
async def readyz(state: StateDep) -> ReadyResponse | JSONResponse:
    engine = state.engine
    if engine is None:
        return JSONResponse(ReadyResponse(status="loading").model_dump(), status_code=503)
    return engine.describe(cache=state.cache.name)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(state: StateDep) -> Response:
    state.metrics.queue_depth.set(state.engine.batcher.depth if state.engine else 0)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _check_key(state: StateDep, api_key: str | None) -> None:
    configured = state.settings.admin_api_key
    if configured is None:
        raise ServiceError("admin endpoints are disabled: set OUTFIT_ADMIN_API_KEY", code="admin_disabled",
                           status=403)
    if not api_key:
        err = AuthError("missing X-API-Key header")
        err.headers = {"WWW-Authenticate": "ApiKey"}
        raise err
    if not hmac.compare_digest(api_key.encode(), configured.get_secret_value().encode()):
        raise ServiceError("invalid API key", code="forbidden", status=403)


@router.post("/v1/admin/reload", response_model=ReloadResponse, summary="Load a newly published index/checkpoint",
             openapi_extra={"requestBody": {"required": False, "content": {
                 "application/json": {"schema": ReloadRequest.model_json_schema()}}}},
             responses=errors(400, 401, 403, 409, 413, 415, 422))
async def reload(
    request: Request,
    state: StateDep,
    x_api_key: Annotated[str | None, Header()] = None,
) -> ReloadResponse:
    # The key is checked before the body is read: an anonymous client learns nothing about the body's rules.
    _check_key(state, x_api_key)
    body = ReloadRequest()
    if await request.body():
        if media_type(request) not in ("application/json", ""):
            raise unsupported(request, ("application/json",))
        body = await parse_json(request, ReloadRequest)
    before = state.engine.describe(cache=state.cache.name) if state.engine else ReadyResponse(status="loading")
    index = Path(body.index) if body.index else None
    ckpt = Path(body.checkpoint) if body.checkpoint else None
    _, engine = await state.reload(index=index, checkpoint=ckpt)
    if state.reload_signal is not None:  # the other workers load the same (service/reload_signal.py)
        await run_in_threadpool(state.reload_signal.publish, index=engine.index_root, checkpoint=ckpt)
    return ReloadResponse(status="reloaded", previous=before, current=engine.describe(cache=state.cache.name))
