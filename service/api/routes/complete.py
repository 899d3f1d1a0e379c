"""POST /v1/outfits/complete: whole outfits around seed items and/or photos (service/completion.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.api.cached import cached_result, json_response
from service.api.deps import CacheDep, EngineDep, StateDep
from service.api.parsing import (
    binary_field,
    count_rule,
    form_files,
    form_model,
    json_or_form,
    multipart_schema,
    request_body,
)
from service.api.responses import errors
from service.cache_keys import result_key
from service.complete_look import Seeds, complete_outfits
from service.completion import SearchBounds
from service.engine import Engine
from service.errors import InvalidInputError
from service.recommend import check_categories, item_filter, resolve_items
from service.schemas import MAX_OUTFIT_ITEMS, CompleteForm, CompleteOptions, CompleteRequest, CompleteResponse
from service.uploads import UploadEmbeddings, embed_uploads, read_upload

router = APIRouter(prefix="/v1", tags=["outfits"])

BOUNDS = SearchBounds()
MULTIPART_SCHEMA = multipart_schema(
    CompleteForm, {"images": {"type": "array", "items": binary_field("a seed photo")}},
    rule=count_rule("item_ids", "images", 1, MAX_OUTFIT_ITEMS - 1, per_file=("image_categories",)),
)


def by_items(engine: Engine, req: CompleteRequest) -> CompleteResponse:
    ids = list(dict.fromkeys(req.item_ids))
    vectors, categories = resolve_items(engine, ids)
    return complete_outfits(engine, Seeds.of_items(ids, vectors, categories), req, BOUNDS)


def _by_form(engine: Engine, ids: list[str], photos: UploadEmbeddings,
             photo_categories: list[str | None], opts: CompleteOptions) -> CompleteResponse:
    seeds = Seeds.of_items(ids, *resolve_items(engine, ids)) if ids else Seeds.empty(engine.index.dim)
    seeds = seeds.with_uploads(engine, photos.vectors, photo_categories, photos.category_probs)
    return complete_outfits(engine, seeds, opts, BOUNDS)


@router.post(
    "/outfits/complete",
    response_model=CompleteResponse,
    openapi_extra=request_body(CompleteRequest, MULTIPART_SCHEMA),
    summary="Complete the look: whole outfits around seed items or photos",
    responses=errors(400, 404, 413, 415, 422, 503),
)
async def post_complete(request: Request, state: StateDep, engine: EngineDep, cache: CacheDep) -> Response:
    body = await json_or_form(request, CompleteRequest)
    if isinstance(body, CompleteRequest):
        return await cached_result(cache, result_key("complete", engine.cache_scope, body), CompleteResponse,
                                   ttl_s=state.settings.cache_result_ttl_s,
                                   compute=lambda: engine.run(by_items, engine, body))
    form = form_model(body, CompleteForm, files={"images"})
    ids = list(dict.fromkeys(form.item_ids))
    files = form_files(body, "images")
    if not 1 <= len(ids) + len(files) <= MAX_OUTFIT_ITEMS - 1:
        raise InvalidInputError(f"send 1 to {MAX_OUTFIT_ITEMS - 1} seeds (item_ids and images); "
                                f"got {len(ids) + len(files)}", count=len(ids) + len(files))
    photo_cats: list[str | None] = list(form.image_categories)
    if len(photo_cats) > len(files):
        raise InvalidInputError(f"{len(photo_cats)} image_categories for {len(files)} images",
                                field="image_categories")
    photo_cats += [None] * (len(files) - len(photo_cats))
    opts = CompleteOptions.model_validate(form.model_dump(exclude={"item_ids", "image_categories"}))
    # Unknown ids and categories fail before any photo is embedded.
    check_categories(engine, [c for c in photo_cats if c] + list(opts.categories or []))
    item_filter(engine, opts.filters)
    if ids:
        await engine.run(resolve_items, engine, ids)
    uploads = [await read_upload(f, label=f"images[{n}]", max_bytes=state.settings.max_upload_bytes)
               for n, f in enumerate(files)]
    photos = await embed_uploads(uploads, engine=engine, cache=cache, limits=state.image_limits,
                                 gate=state.decode_gate, ttl_s=state.settings.cache_embedding_ttl_s)
    return json_response(await engine.run(_by_form, engine, ids, photos, photo_cats, opts))
