"""Service errors: each carries its HTTP status and a machine-readable code; never a 5xx for bad input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ECHO_CHARS = 80  # longest client-supplied value an error message repeats


def clip(value: str, limit: int = ECHO_CHARS) -> str:
    """A value as echoed in an error: whole when short, else its start and how long it was."""
    return value if len(value) <= limit else f"{value[:limit]}… ({len(value)} chars)"


class ServiceError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class UnknownItemsError(ServiceError):
    status = 404
    code = "unknown_items"

    def __init__(self, item_ids: Sequence[str]) -> None:
        ids = list(item_ids)
        shown = [clip(i) for i in ids[:20]]
        more = f" and {len(ids) - 20} more" if len(ids) > 20 else ""
        super().__init__(f"unknown item ids: {', '.join(shown)}{more}", item_ids=shown)


class UnknownCategoryError(ServiceError):
    status = 422
    code = "unknown_category"

    def __init__(self, categories: Sequence[str], known: Sequence[str]) -> None:
        shown = [clip(c) for c in list(categories)[:20]]
        super().__init__(f"unknown categories {shown}; known: {sorted(known)}", categories=shown)


class InvalidInputError(ServiceError):
    status = 422
    code = "invalid_input"


class UnanswerableError(ServiceError):
    """A well-formed request that cannot be answered: the query's items already cover every category asked for,
    filters and exclusions leave no candidates, the outfit would grow past its limit (all depending on the
    catalog's data), or the candidates repeat outfit items (a rule across two fields). No JSON Schema can rule
    these out, so the OpenAPI document cannot either: each reason has its own code (UNANSWERABLE_CODES)."""

    status = 422


UNANSWERABLE_CODES = ("no_target_category", "no_candidates", "outfit_too_large", "candidates_in_outfit")


class PayloadTooLargeError(ServiceError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ServiceError):
    status = 415
    code = "unsupported_media_type"


class OverloadedError(ServiceError):
    """The embedding queue is full: the client should retry later rather than pile up requests."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class NotReadyError(ServiceError):
    status = 503
    code = "not_ready"


class AuthError(ServiceError):
    status = 401
    code = "unauthorized"


class FilterRequestError(ServiceError):
    """A filter names an attribute the catalog lacks, or gives one a value of the wrong type."""

    status = 422
    code = "invalid_filter"

    def __init__(self, message: str, *, unknown: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(message, code="unknown_filter" if unknown else None, unknown=list(unknown),
                         known=list(known))
