"""POST /v1/complementary: items from other categories that go with an image or the outfit so far."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response

from service.api.cached import cached_result, json_response
from service.api.deps import CacheDep, EngineDep, StateDep
from service.api.parsing import (
    binary_field,
    form_files,
    form_options,
    media_type,
    parse_json,
    read_form,
    request_body,
    unknown_fields,
    unsupported,
)
from service.engine import Engine
from service.errors import InvalidInputError
from service.recommend import check_categories, complementary, item_filter, resolve_items, upload_category
from service.schemas import ComplementaryOptions, ComplementaryRequest, ComplementaryResponse, QueryInfo
from service.scoring import outfit_query_vector
from service.uploads import embed_uploads, read_upload

router = APIRouter(prefix="/v1", tags=["recommend"])

_OPTION_FIELDS = {"k", "per_category", "categories", "exclude", "filters", "diversity"}
MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["image"],
    "additionalProperties": False,
    "properties": {
        "image": binary_field("product photo (JPEG, PNG, WebP, GIF first frame)"),
        "category": {"type": "string", "minLength": 1, "maxLength": 100,
                     "description": "the photo's category; inferred from its nearest catalog items when absent"},
        "k": {"type": "integer", "minimum": 1, "maximum": 100},
        "per_category": {"type": "integer", "minimum": 1, "maximum": 50},
        "categories": {"type": "array", "items": {"type": "string"}, "description": "repeated or comma-separated"},
        "exclude": {"type": "array", "items": {"type": "string"}},
        "filters": {"type": "string", "contentMediaType": "application/json",
                    "description": 'business filters as a JSON object, e.g. {"price_max": 80, "in_stock": true}'},
        "diversity": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


def by_items(engine: Engine, req: ComplementaryRequest) -> ComplementaryResponse:
    """Query = the normalised mean of the outfit's catalog embeddings; its categories are excluded."""
    ids = list(dict.fromkeys(req.item_ids))
    vectors, categories = resolve_items(engine, ids)
    cats = list(dict.fromkeys(categories))
    groups = complementary(engine, outfit_query_vector(vectors), query_categories=cats, query_ids=ids, options=req,
                           members=vectors)
    return ComplementaryResponse(
        query=QueryInfo(kind="items", item_ids=ids, categories=cats, category_inferred=False),
        groups=groups, model_version=engine.model_version, index_version=engine.index_version,
    )


def by_image(
    engine: Engine, query: np.ndarray, category: str | None, opts: ComplementaryOptions, cached: bool
) -> ComplementaryResponse:
    inferred = None if category else upload_category(engine, query)
    if inferred is not None:
        category = inferred.category
    assert category is not None
    groups = complementary(engine, query, query_categories=[category], query_ids=[], options=opts)
    return ComplementaryResponse(
        query=QueryInfo(kind="image", item_ids=[], categories=[category], category_inferred=inferred is not None,
                        inferred_from=inferred.neighbours if inferred else [],
                        category_source=inferred.source if inferred else "given",
                        category_confidence=round(inferred.confidence, 6) if inferred else None,
                        embedding_cached=cached),
        groups=groups, model_version=engine.model_version, index_version=engine.index_version,
    )


@router.post(
    "/complementary",
    response_model=ComplementaryResponse,
    openapi_extra=request_body(ComplementaryRequest, MULTIPART_SCHEMA),
    summary="Complementary items, grouped by category",
)
async def post_complementary(request: Request, state: StateDep, engine: EngineDep, cache: CacheDep) -> Response:
    kind = media_type(request)
    if kind == "application/json":
        req = await parse_json(request, ComplementaryRequest)
        return await cached_result(
            cache,
            f"res:complementary:{engine.cache_scope}:{req.model_dump_json()}",
            ComplementaryResponse,
            ttl_s=state.settings.cache_result_ttl_s,
            compute=lambda: engine.run(by_items, engine, req),
        )
    if kind == "multipart/form-data":
        form = await read_form(request)
        unknown_fields(form, {"image", "category", *_OPTION_FIELDS})
        files = form_files(form, "image")
        if len(files) != 1:
            raise InvalidInputError("send exactly one file in the 'image' field", field="image")
        opts = form_options(form, ComplementaryOptions, scalars=("k", "per_category", "diversity"),
                            lists=("categories", "exclude"), json_fields=("filters",))
        category = form.get("category")
        if category is not None and not isinstance(category, str):
            raise InvalidInputError("'category' must be a text field", field="category")
        if category:
            check_categories(engine, [category])  # before paying for the embedding
        item_filter(engine, opts.filters)  # likewise
        upload = await read_upload(files[0], label="image", max_bytes=state.settings.max_upload_bytes)
        vecs, cached = await embed_uploads([upload], engine=engine, cache=cache, limits=state.image_limits,
                                           ttl_s=state.settings.cache_embedding_ttl_s)
        return json_response(await engine.run(by_image, engine, vecs[0], category or None, opts, cached[0]))
    raise unsupported(request, ("application/json", "multipart/form-data"))
