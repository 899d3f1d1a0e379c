"""Schemathesis hooks for the contract run (test_svc_contract.py loads them with SCHEMATHESIS_HOOKS).

Three things the OpenAPI document cannot say, and only these:
- a `format: binary` upload must be a decodable photo: generated uploads are small real JPEG/PNG photos
  (the negative phase still sends whatever breaks the schema);
- a well-formed request can be unanswerable (service.errors.UnanswerableError: e.g. filters leave no
  candidates). `positive_data_acceptance` is replaced by the same check that lets a 422 with one of those
  codes pass; every other refusal of a schema-valid request still fails the run;
- multipart text has no types, and list fields also take comma-separated values (docs/SERVICE.md): a
  "negative" form holding a scalar where the schema says a list of text, or a value with commas, can be a
  valid list on the wire. A negative_data_rejection failure is dropped only when the form, read the way the
  server reads it, is valid against the operation's schema.
"""

from __future__ import annotations

import io
import json
from typing import Any

import schemathesis
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from PIL import Image
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.errors import UNANSWERABLE_CODES

# price_min above price_max is the filters' one schema-valid refusal: no JSON Schema keyword compares two fields
# (attribute names and types, the other invalid filters, are in the served schema).
ACCEPTED_REFUSALS = (*UNANSWERABLE_CODES, "invalid_filter")


def _photo(width: int, height: int, fmt: str, shade: int) -> bytes:
    img = Image.new("RGB", (width, height), (255, 255, 255))
    img.paste(Image.new("RGB", (max(1, width // 2), max(1, height // 3)), (shade, 80, 255 - shade)), (0, 0))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


schemathesis.openapi.format(
    "binary",
    st.builds(_photo, st.integers(16, 96), st.integers(16, 96), st.sampled_from(["JPEG", "PNG"]),
              st.integers(0, 255)),
)


def _error_code(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


@schemathesis.check
def positive_data_accepted_or_unanswerable(ctx: Any, response: Any, case: Any) -> bool | None:
    """positive_data_acceptance, except for a 422 naming why the index cannot answer a well-formed request."""
    if response.status_code == 422 and _error_code(response) in ACCEPTED_REFUSALS:
        return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result


def _as_sent(body: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The form as the server parses it (service.api.parsing.form_list): a text list field's values, one or
    several, each split at commas and stripped, blanks dropped."""
    props = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, value in body.items():
        prop = props.get(name, {})
        is_list = prop.get("type") == "array" or any(o.get("type") == "array" for o in prop.get("anyOf", ()))
        if is_list and prop.get("items", {}).get("format") != "binary":
            values = value if isinstance(value, list) else [value]
            texts = [v if isinstance(v, str) else json.dumps(v) for v in values]
            value = [part.strip() for text in texts for part in text.split(",") if part.strip()]
        out[name] = value
    return out


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if getattr(failure, "code", None) != "ST201" or not str(case.media_type or "").startswith("multipart/"):
        return True
    if not isinstance(case.body, dict):
        return True
    schema = case.operation.definition.raw["requestBody"]["content"]["multipart/form-data"]["schema"]
    sent = _as_sent(case.body, schema)
    if sent == case.body:
        return True
    # File parts are bytes, not JSON: each stands in as a placeholder, so the count rules still apply.
    props = schema.get("properties", {})
    files = {n for n, p in props.items() if p.get("format") == "binary" or p.get("items", {}).get("format") == "binary"}
    for name in files & set(sent):
        sent[name] = ["file"] * len(sent[name]) if isinstance(sent[name], list) else "file"
    placeholder = {**schema, "properties": {n: ({} if n in files else p) for n, p in props.items()}}
    return not Draft202012Validator(placeholder).is_valid(sent)
