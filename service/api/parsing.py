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
# The longest form a schema allows: `exclude` (1,000 ids) as repeated fields, plus the other lists and scalars.
MAX_FORM_FIELDS = 1200


async def read_form(request: Request) -> FormData:
    with stage("form"):
        return await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)


def form_list(form: FormData, name: str) -> list[str] | None:
    """Repeated fields and comma-separated values both work: `categories=shoes&categories=bags` or `shoes,bags`."""
    values = [v for v in form.getlist(name) if isinstance(v, str)]
    if not values:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def form_json(value: object, name: str) -> Any:
    """A form part holding a JSON value (multipart cannot nest objects); malformed JSON is a 422 naming it.

    The part may be a text field or, as OpenAPI clients send an object-valued part, one with its own
    `Content-Type: application/json` (and a file name).
    """
    if isinstance(value, UploadFile):
        value.file.seek(0)
        value = value.file.read(1_000_001).decode("utf-8", errors="replace")  # the form's body limit bounds it
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
            text = form.get(name)
            if text is not None and not (isinstance(text, str) and not text.strip()):  # blank means "not set"
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


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `#/$defs/...` references replaced by the definitions: such a reference
    would not resolve inside the OpenAPI document, where the schema is embedded (the models do not recurse)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: walk(v) for k, v in node.items() if k != "$ref"}
            return {**walk(defs[ref.removeprefix("#/$defs/")]), **rest}
        return {k: walk(v) for k, v in node.items() if k != "$defs"}

    out: dict[str, Any] = walk(schema)
    return out


# A list field's values are split at commas and stripped (form_list): each value holds no comma and not only
# spaces, or the server would see other items than the schema described.
_FORM_LIST_ITEM = r"^[^,]*[^,\s][^,]*$"


_BLANK = {"type": "string", "pattern": r"^\s*$"}
_ANNOTATIONS = ("title", "description", "default")


def _annotations(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k in _ANNOTATIONS and v is not None}


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A form field is sent or not: no null (a multipart client would send the text "null")."""
    options = [o for o in prop.get("anyOf", ()) if o.get("type") != "null"]
    if "anyOf" not in prop or len(options) == len(prop["anyOf"]):
        return prop
    rest = {k: v for k, v in prop.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**options[0], **rest} if len(options) == 1 else {**rest, "anyOf": options}


def _form_list_items(prop: dict[str, Any]) -> dict[str, Any]:
    if prop.get("type") == "array":
        return {**prop, "items": {**prop.get("items", {}), "pattern": _FORM_LIST_ITEM}}
    if "anyOf" in prop:
        return {**prop, "anyOf": [_form_list_items(p) for p in prop["anyOf"]]}
    return prop


def multipart_schema(model: type[BaseModel] | None, files: dict[str, dict[str, Any]],
                     required: tuple[str, ...] = (), rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenAPI schema of a multipart body: `model`'s fields (its limits, one source) plus file parts.

    A nested model (filters) is an object-valued part, which OpenAPI sends as JSON (see form_json); `rule`
    adds a cross-field rule (see count_rule).
    """
    schema = inline_defs(model.model_json_schema()) if model is not None else {"properties": {}}
    props = dict(schema.get("properties", {}))
    for name, info in (model.model_fields.items() if model is not None else ()):
        if _json_model(info.annotation):  # one JSON part; absent when not set (no null)
            options = props[name].get("anyOf", [props[name]])
            props[name] = {**next(o for o in options if o.get("type") == "object"),
                           "description": f"{info.description or name}, as a JSON part"}
        elif _is_list_field(info.annotation):
            props[name] = _form_list_items(_without_null(props[name]))
        elif name not in schema.get("required", ()):
            # A text field sent blank (a form's empty input) means "not set", like leaving it out.
            value = {k: v for k, v in _without_null(props[name]).items() if k not in _ANNOTATIONS}
            props[name] = {"anyOf": [value, _BLANK], **_annotations(props[name])}
    props.update(files)
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props, **(rule or {})}
    needed = [*schema.get("required", []), *required]
    if needed:
        out["required"] = needed
    return out


def count_rule(ids: str, files: str, low: int, high: int, per_file: tuple[str, ...] = ()) -> dict[str, Any]:
    """`low` to `high` items in the text list `ids` and the file parts `files` together, as JSON Schema can say
    it: one branch per number of files (fields in `per_file` hold at most one value per file)."""
    branches = []
    for k in range(high + 1):
        props: dict[str, Any] = {files: {"minItems": k, "maxItems": k},
                                 ids: {"minItems": max(0, low - k), "maxItems": high - k}}
        props.update({name: {"maxItems": k} for name in per_file})
        needed = ([ids] if low - k > 0 else []) + ([files] if k else [])
        branches.append({"properties": props, **({"required": needed} if needed else {})})
    return {"anyOf": branches}


def unsupported(request: Request, accepted: tuple[str, ...]) -> UnsupportedMediaTypeError:
    return UnsupportedMediaTypeError(
        f"Content-Type {media_type(request)!r} is not accepted here; send one of {list(accepted)}"
    )


def request_body(json_model: type[BaseModel] | None, multipart: dict[str, Any] | None) -> dict[str, Any]:
    """`openapi_extra` declaring the accepted media types of a hand-parsed body."""
    content: dict[str, Any] = {}
    if json_model is not None:
        content["application/json"] = {"schema": inline_defs(json_model.model_json_schema())}
    if multipart is not None:
        content["multipart/form-data"] = {"schema": multipart}
    return {"requestBody": {"required": True, "content": content}}


def binary_field(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "binary", "description": description}
