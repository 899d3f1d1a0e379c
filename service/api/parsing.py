"""Bodies that may be JSON or multipart: dispatch on Content-Type, validate with the pydantic models.

FastAPI cannot declare one route with two body types, so these routes read the request themselves and
publish both media types in OpenAPI through `openapi_extra` (see `request_body`).
"""

from __future__ import annotations

import json
import types
from typing import Any, TypeVar, Union, get_args, get_origin

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from service.errors import InvalidInputError, ServiceError, UnsupportedMediaTypeError, clip
from service.timing import stage

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"
MULTIPART = "multipart/form-data"


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


async def json_or_form(request: Request, json_model: type[M]) -> M | FormData:
    """The body of a route that takes JSON (validated into `json_model`) or a multipart form (returned raw)."""
    kind = media_type(request)
    if kind == JSON:
        return await parse_json(request, json_model)
    if kind == MULTIPART:
        return await read_form(request)
    raise unsupported(request, (JSON, MULTIPART))


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


def form_files(form: FormData, name: str) -> list[UploadFile]:
    out: list[UploadFile] = []
    for v in form.getlist(name):
        if not isinstance(v, UploadFile):
            raise ServiceError(f"field {name!r} must be a file upload, not a text value", code="not_a_file",
                               status=422, field=name)
        out.append(v)
    return out


def single_file(form: FormData, name: str = "image") -> UploadFile:
    """The one file a single-image route takes from its form."""
    files = form_files(form, name)
    if len(files) != 1:
        raise InvalidInputError(f"send exactly one file in the {name!r} field", field=name)
    return files[0]


def unknown_fields(form: FormData, allowed: set[str]) -> None:
    extra = [clip(f) for f in sorted(set(form.keys()) - allowed)[:20]]
    if extra:
        raise ServiceError(f"unknown form fields {extra}; allowed: {sorted(allowed)}", code="unknown_fields",
                           status=422, fields=extra)


def _json_model(annotation: Any) -> bool:
    """A pydantic model (or an optional one): sent in a form as JSON text, since multipart cannot nest."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return get_origin(annotation) in (Union, types.UnionType) and any(_json_model(a) for a in get_args(annotation))


def _is_list_field(annotation: Any) -> bool:
    """list[...] or list[...] | None (Annotated wrappers included)."""
    origin = get_origin(annotation)
    if origin is list:
        return True
    if origin in (Union, types.UnionType):
        return any(_is_list_field(a) for a in get_args(annotation) if a is not type(None))
    if hasattr(annotation, "__metadata__"):  # Annotated[list[...], ...]
        return _is_list_field(get_args(annotation)[0])
    return False


def form_model(form: FormData, model: type[M], *, files: set[str]) -> M:
    """The text fields of a multipart form validated by `model` (the JSON body's types and limits).

    Unknown fields are refused; list fields take repeated or comma-separated values; a nested model (filters)
    is JSON text; a scalar field must be sent once, as text. `files` names the file parts the route reads.
    """
    unknown_fields(form, set(model.model_fields) | files)
    raw: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if _json_model(info.annotation):
            if (text := form.get(name)) is not None:
                raw[name] = form_json(text, name)
            continue
        if _is_list_field(info.annotation):
            if (values := form_list(form, name)) is not None:
                raw[name] = values
            continue
        found = form.getlist(name)
        if not found:
            continue
        if len(found) > 1 or not isinstance(found[0], str):
            raise ServiceError(f"{name!r} must be sent once, as a text field", code="invalid_input", status=422,
                               field=name)
        if found[0].strip():  # an empty field (a form's blank input) means "not set"
            raw[name] = found[0]
    return validate(model, raw)


def multipart_schema(model: type[BaseModel] | None, files: dict[str, dict[str, Any]],
                     required: tuple[str, ...] = ()) -> dict[str, Any]:
    """OpenAPI schema of a multipart body: `model`'s fields (its limits, one source) plus file parts."""
    schema = model.model_json_schema() if model is not None else {"properties": {}}
    props = dict(schema.get("properties", {}))
    for name, info in (model.model_fields.items() if model is not None else ()):
        if _json_model(info.annotation):  # sent as JSON text (see form_model)
            props[name] = {"type": "string", "contentMediaType": "application/json",
                           "description": f"{info.description or name}, as a JSON object"}
            schema.pop("$defs", None)
    props.update(files)
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    needed = [*schema.get("required", []), *required]
    if needed:
        out["required"] = needed
    if "$defs" in schema:  # a "#/$defs/..." reference would not resolve inside the OpenAPI document
        raise ValueError(f"{model}: multipart form models must be flat")
    return out


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
