"""POST /v1/complementary: items from other categories that go with an image or the outfit so far."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response

from service.api.cached import cached_result, json_response
from service.api.deps import CacheDep, EngineDep, StateDep
from service.api.parsing import binary_field, form_model, json_or_form, multipart_schema, request_body, single_file
from service.api.responses import errors
from service.cache_keys import result_key
from service.engine import Engine
from service.recommend import check_categories, complementary, resolve_items, upload_category
from service.schemas import (
    ComplementaryForm,
    ComplementaryOptions,
    ComplementaryRequest,
    ComplementaryResponse,
    QueryInfo,
)
from service.scoring import outfit_query_vector
from service.uploads import embed_form_image

router = APIRouter(prefix="/v1", tags=["recommend"])

MULTIPART_SCHEMA = multipart_schema(
    ComplementaryForm, {"image": binary_field("product photo (JPEG, PNG, WebP, GIF first frame)")}, ("image",)
)


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
    engine: Engine, query: np.ndarray, category: str | None, opts: ComplementaryOptions, cached: bool,
    probs: np.ndarray | None = None,
) -> ComplementaryResponse:
    inferred = None if category else upload_category(engine, query, probs)
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
    responses=errors(400, 404, 413, 415, 422, 503),
)
async def post_complementary(request: Request, state: StateDep, engine: EngineDep, cache: CacheDep) -> Response:
    body = await json_or_form(request, ComplementaryRequest)
    if isinstance(body, ComplementaryRequest):
        return await cached_result(
            cache,
            result_key("complementary", engine.cache_scope, body),
            ComplementaryResponse,
            ttl_s=state.settings.cache_result_ttl_s,
            compute=lambda: engine.run(by_items, engine, body),
        )
    form = form_model(body, ComplementaryForm, files={"image"})
    file = single_file(body, "image")
    if form.category:
        check_categories(engine, [form.category])  # before paying for the embedding
    opts = ComplementaryOptions.model_validate(form.model_dump(exclude={"category"}))
    vec, cached, probs = await embed_form_image(file, state=state, engine=engine, cache=cache)
    return json_response(await engine.run(by_image, engine, vec, form.category, opts, cached, probs))
