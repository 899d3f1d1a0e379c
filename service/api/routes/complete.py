"""POST /v1/outfits/complete: whole outfits around seed items and/or photos (service/completion.py)."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response

from service.api.cached import cached_answer, json_response
from service.api.deps import CacheDep, EngineDep, StateDep
from service.api.parsing import (
    binary_field,
    form_files,
    form_list,
    form_options,
    media_type,
    parse_json,
    read_form,
    request_body,
    unknown_fields,
    unsupported,
)
from service.complete_look import Seeds, complete_outfits
from service.completion import SearchBounds
from service.engine import Engine
from service.errors import InvalidInputError
from service.recommend import check_categories, item_filter, resolve_items
from service.schemas import MAX_OUTFIT_ITEMS, CompleteOptions, CompleteRequest, CompleteResponse
from service.uploads import embed_uploads, read_upload

router = APIRouter(prefix="/v1", tags=["outfits"])

BOUNDS = SearchBounds()
_OPTION_FIELDS = {"categories", "n_outfits", "diversity", "exclude", "filters"}
MULTIPART_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "item_ids": {"type": "array", "items": {"type": "string"}, "description": "seed item ids"},
        "images": {"type": "array", "items": binary_field("a seed photo")},
        "image_categories": {"type": "array", "items": {"type": "string"},
                             "description": "the photos' categories, in order (default: inferred)"},
        "categories": {"type": "array", "items": {"type": "string"}, "description": "target categories"},
        "n_outfits": {"type": "integer", "minimum": 1, "maximum": 10},
        "diversity": {"type": "number", "minimum": 0, "maximum": 1},
        "exclude": {"type": "array", "items": {"type": "string"}},
        "filters": {"type": "string", "contentMediaType": "application/json",
                    "description": 'business filters for the added items as a JSON object, e.g. {"price_max": 80}'},
    },
}


def by_items(engine: Engine, req: CompleteRequest) -> CompleteResponse:
    ids = list(dict.fromkeys(req.item_ids))
    vectors, categories = resolve_items(engine, ids)
    return complete_outfits(engine, Seeds.of_items(ids, vectors, categories), req, BOUNDS)


def _by_form(engine: Engine, ids: list[str], photos: np.ndarray,
             photo_categories: list[str | None], opts: CompleteOptions) -> CompleteResponse:
    seeds = Seeds.of_items(ids, *resolve_items(engine, ids)) if ids else Seeds.empty(engine.index.dim)
    return complete_outfits(engine, seeds.with_uploads(engine, photos, photo_categories), opts, BOUNDS)


@router.post(
    "/outfits/complete",
    response_model=CompleteResponse,
    openapi_extra=request_body(CompleteRequest, MULTIPART_SCHEMA),
    summary="Complete the look: whole outfits around seed items or photos",
)
async def post_complete(request: Request, state: StateDep, engine: EngineDep, cache: CacheDep) -> Response:
    kind = media_type(request)
    if kind == "application/json":
        req = await parse_json(request, CompleteRequest)
        return await cached_answer(cache, "complete", engine.cache_scope, req, CompleteResponse,
                                   ttl_s=state.settings.cache_result_ttl_s,
                                   compute=lambda: engine.run(by_items, engine, req))
    if kind == "multipart/form-data":
        form = await read_form(request)
        unknown_fields(form, {"item_ids", "images", "image_categories", *_OPTION_FIELDS})
        ids = list(dict.fromkeys(form_list(form, "item_ids") or []))
        files = form_files(form, "images")
        if not 1 <= len(ids) + len(files) <= MAX_OUTFIT_ITEMS - 1:
            raise InvalidInputError(f"send 1 to {MAX_OUTFIT_ITEMS - 1} seeds (item_ids and images); "
                                    f"got {len(ids) + len(files)}", count=len(ids) + len(files))
        photo_cats: list[str | None] = [c or None for c in (form_list(form, "image_categories") or [])]
        if len(photo_cats) > len(files):
            raise InvalidInputError(f"{len(photo_cats)} image_categories for {len(files)} images",
                                    field="image_categories")
        photo_cats += [None] * (len(files) - len(photo_cats))
        opts = form_options(form, CompleteOptions, scalars=("n_outfits", "diversity"), lists=("categories", "exclude"),
                            json_fields=("filters",))
        # Unknown ids and categories fail before any photo is embedded.
        check_categories(engine, [c for c in photo_cats if c] + list(opts.categories or []))
        item_filter(engine, opts.filters)
        if ids:
            await engine.run(resolve_items, engine, ids)
        uploads = [await read_upload(f, label=f"images[{n}]", max_bytes=state.settings.max_upload_bytes)
                   for n, f in enumerate(files)]
        vecs, _ = await embed_uploads(uploads, engine=engine, cache=cache, limits=state.image_limits,
                                      ttl_s=state.settings.cache_embedding_ttl_s)
        return json_response(await engine.run(_by_form, engine, ids, vecs, photo_cats, opts))
    raise unsupported(request, ("application/json", "multipart/form-data"))
