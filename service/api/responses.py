"""The error answers each route can give, declared in OpenAPI with the error envelope's schema."""

from __future__ import annotations

from typing import Any

from service.schemas import ErrorResponse

_WHY = {
    400: "malformed JSON or multipart body",
    401: "no API key",
    403: "wrong API key, or admin endpoints disabled",
    404: "unknown item ids (or no image)",
    409: "the index or checkpoint cannot be loaded, or a reload is running; the old engine keeps serving",
    413: "request or image over the size limit",
    415: "unsupported Content-Type or not an image",
    422: "invalid request: out-of-range values, unknown fields or categories, undecodable image",
    503: "not ready, or overloaded (with Retry-After)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with its description and the `{"error": {...}}` schema."""
    return {status: {"model": ErrorResponse, "description": _WHY[status]} for status in statuses}
