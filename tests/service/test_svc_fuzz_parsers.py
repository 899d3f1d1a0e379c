"""Fuzzing (slow tier): the JSON and multipart request parsers raise only validation errors (4xx), never crash.

Run with `-m slow`; derandomised Hypothesis examples, FUZZ_EXAMPLES per target (default 300).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

_text = st.text(st.characters(codec="utf-8"), max_size=300)
_values = st.one_of(_text, st.lists(_text, max_size=30).map(",".join))


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(("item_ids", "k", "per_category", "categories", "exclude",
                                               "category", "images", "other")), _values, max_size=6))
def test_form_parsers_raise_only_validation_errors(fields: dict[str, str]) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.datastructures import FormData

    from service.api.parsing import form_model
    from service.errors import ServiceError
    from service.schemas import CompatibilityForm, ComplementaryForm

    form = FormData(list(fields.items()))
    for model, files in ((ComplementaryForm, {"image"}), (CompatibilityForm, {"images"})):
        try:
            parsed = form_model(form, model, files=files)
        except (RequestValidationError, ServiceError):
            continue
        assert isinstance(parsed, model)


@FUZZ
@given(body=st.one_of(st.binary(max_size=400), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _text),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_text, inner, max_size=5)),
    max_leaves=20).map(lambda v: json.dumps(v).encode())))
def test_json_parsers_raise_only_validation_errors(body: bytes) -> None:
    import asyncio

    from fastapi.exceptions import RequestValidationError
    from starlette.requests import Request

    from service.api.parsing import parse_json
    from service.errors import ServiceError
    from service.schemas import CompatibilityRequest, ComplementaryRequest, FITBRequest, ReloadRequest

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    for model in (ComplementaryRequest, CompatibilityRequest, FITBRequest, ReloadRequest):
        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        with contextlib.suppress(RequestValidationError, ServiceError):
            asyncio.run(parse_json(request, model))
