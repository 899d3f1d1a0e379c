"""Bodies that may be JSON or multipart: dispatch on Content-Type, validate with the pydantic models.

FastAPI cannot declare one route with two body types, so these routes read the request themselves and
publish both media types in OpenAPI through `openapi_extra` (see `request_body`).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from service.errors import ServiceError, UnsupportedMediaTypeError
from service.timing import stage

M = TypeVar("M", bound=BaseModel)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_context=False)) from e


async def parse_json(request: Request, model: type[M]) -> M:
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            raise ServiceError(f"request body is not valid JSON: {e.errors()[0]['msg']}",
                               code="malformed_json", status=400) from e
        raise RequestValidationError(e.errors(include_url=False, include_context=False)) from e


# Parts beyond what any route accepts are refused by the parser (400); counts up to this get a precise 422.
MAX_FORM_FILES = 50


async def read_form(request: Request) -> FormData:
    with stage("form"):
        return await request.form(max_files=MAX_FORM_FILES, max_fields=200)


def form_list(form: FormData, name: str) -> list[str] | None:
    """Repeated fields and comma-separated values both work: `categories=shoes&categories=bags` or `shoes,bags`."""
    values = [v for v in form.getlist(name) if isinstance(v, str)]
    if not values:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def form_json(value: object, name: str) -> Any:
    """A form field holding a JSON value (multipart cannot nest objects); malformed JSON is a 422 naming it."""
    if not isinstance(value, str):
        raise ServiceError(f"field {name!r} must be a text value holding JSON", code="invalid_input", status=422,
                           field=name)
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise ServiceError(f"field {name!r} is not valid JSON: {e.msg}", code="invalid_input", status=422,
                           field=name) from e


def form_options(
    form: FormData, model: type[M], *, scalars: tuple[str, ...], lists: tuple[str, ...],
    json_fields: tuple[str, ...] = (),
) -> M:
    """The option fields of a multipart form validated as `model`: list fields repeated or comma-separated,
    `json_fields` holding JSON (see `form_json`)."""
    raw: dict[str, object] = {name: v for name in scalars if (v := form.get(name)) is not None}
    raw.update({name: lst for name in lists if (lst := form_list(form, name)) is not None})
    raw.update({name: form_json(text, name) for name in json_fields if (text := form.get(name)) is not None})
    return validate(model, raw)


def form_files(form: FormData, name: str) -> list[UploadFile]:
    out: list[UploadFile] = []
    for v in form.getlist(name):
        if not isinstance(v, UploadFile):
            raise ServiceError(f"field {name!r} must be a file upload, not a text value", code="not_a_file",
                               status=422, field=name)
        out.append(v)
    return out


def unknown_fields(form: FormData, allowed: set[str]) -> None:
    extra = sorted(set(form.keys()) - allowed)
    if extra:
        raise ServiceError(f"unknown form fields {extra}; allowed: {sorted(allowed)}", code="unknown_fields",
                           status=422, fields=extra)


def unsupported(request: Request, accepted: tuple[str, ...]) -> UnsupportedMediaTypeError:
    return UnsupportedMediaTypeError(
        f"Content-Type {media_type(request)!r} is not accepted here; send one of {list(accepted)}"
    )


def request_body(json_model: type[BaseModel] | None, multipart: dict[str, Any] | None) -> dict[str, Any]:
    """`openapi_extra` declaring the accepted media types of a hand-parsed body."""
    content: dict[str, Any] = {}
    if json_model is not None:
        content["application/json"] = {"schema": json_model.model_json_schema()}
    if multipart is not None:
        content["multipart/form-data"] = {"schema": multipart}
    return {"requestBody": {"required": True, "content": content}}


def binary_field(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "binary", "description": description}
