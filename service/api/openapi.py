"""The served OpenAPI document says what the loaded index accepts: its categories and its filter attributes.

The models mark the places (schemas.CATEGORIES_MARK, FILTERS_MARK); FastAPI's document is built once, and
each index version gets a copy with the marks filled in: category fields become an enum of the index's
categories, a filters object gets one typed property per attribute and no others. A reload (admin or
watcher) changes the engine, so the next request for /openapi.json describes the new index. Before an index
is loaded the marks stay unfilled: any category string and any attribute are schema-valid, and the server
answers 422 or 503.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

from service.engine import Engine
from service.schemas import CATEGORIES_MARK, FILTERS_MARK

_JSON_TYPES = {"number": "number", "boolean": "boolean", "string": "string"}


def _condition(kind: str) -> dict[str, Any]:
    """One attribute's filter: a value (equality) or a non-empty list of values (membership), of its type."""
    scalar: dict[str, Any] = {"type": _JSON_TYPES.get(kind, "string")}
    if scalar["type"] == "string":
        scalar["maxLength"] = 200
    return {"anyOf": [scalar, {"type": "array", "items": scalar, "minItems": 1, "maxItems": 200}]}


def specialise(doc: Any, *, categories: list[str], attributes: Mapping[str, str]) -> Any:
    """A copy of `doc` with every marked schema filled in for an index with these categories and attributes."""
    (cat_key, cat_value), = CATEGORIES_MARK.items()
    (flt_key, flt_value), = FILTERS_MARK.items()

    def fill(node: Any) -> Any:
        if isinstance(node, list):
            return [fill(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: fill(v) for k, v in node.items()}
        if out.get(cat_key) == cat_value:
            out["enum"] = list(categories)
        if out.get(flt_key) == flt_value:
            props = {k: v for k, v in out.get("properties", {}).items() if k in ("price_min", "price_max")}
            props.update({name: _condition(kind) for name, kind in sorted(attributes.items())})
            out["properties"] = props
            out["additionalProperties"] = False
            if isinstance(out.get("example"), dict):  # the generic example names attributes this index may lack
                out["example"] = {k: v for k, v in out["example"].items() if k in ("price_min", "price_max")}
        return out

    return fill(doc)


def install_openapi(app: FastAPI, engine_of: Callable[[], Engine | None]) -> None:
    """Serve FastAPI's document specialised for the engine `engine_of()` returns (one copy per index version)."""
    build_base = app.openapi  # FastAPI's own: builds once, then returns its cached document
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        base = build_base()
        engine = engine_of()
        if engine is None:
            return base
        key = f"{engine.index.root}:{engine.index_version}"
        if cached.get("key") != key:
            doc = specialise(copy.deepcopy(base), categories=sorted(engine.index.categories()),
                             attributes=engine.index.attributes)
            cached.update(key=key, doc=doc)
        result: dict[str, Any] = cached["doc"]
        return result

    app.openapi = openapi  # type: ignore[method-assign]
