"""POST /v1/compatibility and POST /v1/fill-in-the-blank: scoring whole outfits."""

from __future__ import annotations

import numpy as np
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
from service.engine import Engine
from service.errors import InvalidInputError, UnanswerableError, clip
from service.recommend import item_categories, item_filter, lookup_vectors, record_out
from service.schemas import (
    MAX_OUTFIT_ITEMS,
    CompatibilityForm,
    CompatibilityRequest,
    CompatibilityResponse,
    FITBCandidate,
    FITBRequest,
    FITBResponse,
    OutfitMember,
    WeakestItem,
)
from service.scoring import rank_candidates, score_outfit
from service.uploads import embed_uploads, read_upload

router = APIRouter(prefix="/v1", tags=["outfits"])

COMPAT_MULTIPART = multipart_schema(
    CompatibilityForm, {"images": {"type": "array", "items": binary_field("an outfit item photo")}},
    rule=count_rule("item_ids", "images", 2, MAX_OUTFIT_ITEMS),
)


def _compatibility(engine: Engine, members: list[OutfitMember], emb: np.ndarray) -> CompatibilityResponse:
    s = score_outfit(emb, engine.calibration)
    weakest = None
    if s.weakest is not None and s.score_without_weakest is not None:
        weakest = WeakestItem(ref=members[s.weakest].ref, position=s.weakest, score_without=s.score_without_weakest)
    return CompatibilityResponse(
        score=s.score,
        calibrated=engine.calibrated,
        calibration=engine.calibration.fitted_on,
        mean_distance=s.mean_distance,
        items=members,
        pairwise=[[round(float(v), 6) for v in row] for row in s.pairwise],
        weakest=weakest,
        model_version=engine.model_version,
    )


def _by_ids(engine: Engine, ids: list[str], uploads: np.ndarray | None = None) -> CompatibilityResponse:
    """Catalog items first, then uploads (referred to as upload:<n>)."""
    id_emb = lookup_vectors(engine, ids) if ids else np.zeros((0, engine.index.dim), dtype=np.float32)
    cats = item_categories(engine, ids) if ids else []
    members = [OutfitMember(ref=i, kind="item", category=c) for i, c in zip(ids, cats, strict=True)]
    emb = id_emb
    if uploads is not None and len(uploads):
        members += [OutfitMember(ref=f"upload:{n}", kind="upload", category=None) for n in range(len(uploads))]
        emb = np.concatenate([id_emb, uploads])
    return _compatibility(engine, members, emb)


def _fitb(engine: Engine, req: FITBRequest) -> FITBResponse:
    outfit = lookup_vectors(engine, req.outfit)
    candidates = list(dict.fromkeys(req.candidates))
    overlap = sorted(set(candidates) & set(req.outfit))
    if overlap:
        shown = [clip(i) for i in overlap[:20]]
        raise UnanswerableError(f"candidates {shown} are already in the outfit", code="candidates_in_outfit",
                                item_ids=shown)
    flt = item_filter(engine, req.filters)
    cand = lookup_vectors(engine, candidates)  # every candidate known, filtered out or not
    filtered_out: list[str] = []
    if flt is not None:
        passing = engine.index.matching(candidates, flt)
        filtered_out = [c for c in candidates if c not in passing]
        keep = [n for n, c in enumerate(candidates) if c in passing]
        candidates, cand = [candidates[n] for n in keep], cand[keep]
    ranked: list[FITBCandidate] = []
    if candidates:
        order, cos, dist = rank_candidates(outfit, cand)
        records = engine.index.get_items(candidates)  # all known: lookup_vectors checked them
        ranked = [
            record_out(records[candidates[j]], FITBCandidate, rank=r + 1, score=float(cos[j]),
                       mean_distance=float(dist[j]))
            for r, j in enumerate(order)
        ]
    return FITBResponse(outfit=list(req.outfit), ranked=ranked, filtered_out=filtered_out,
                        model_version=engine.model_version)


def _check_size(n: int) -> None:
    if not 2 <= n <= MAX_OUTFIT_ITEMS:
        raise InvalidInputError(f"an outfit needs 2 to {MAX_OUTFIT_ITEMS} items; got {n}", count=n)


@router.post(
    "/compatibility",
    response_model=CompatibilityResponse,
    openapi_extra=request_body(CompatibilityRequest, COMPAT_MULTIPART),
    summary="Compatibility score of an outfit, its pairwise distances and its weakest item",
    responses=errors(400, 404, 413, 415, 422, 503),
)
async def post_compatibility(request: Request, state: StateDep, engine: EngineDep, cache: CacheDep) -> Response:
    body = await json_or_form(request, CompatibilityRequest)
    if isinstance(body, CompatibilityRequest):
        return await cached_result(
            cache,
            result_key("compatibility", engine.cache_scope, body),
            CompatibilityResponse,
            ttl_s=state.settings.cache_result_ttl_s,
            compute=lambda: engine.run(_by_ids, engine, body.item_ids),
        )
    ids = form_model(body, CompatibilityForm, files={"images"}).item_ids
    files = form_files(body, "images")
    _check_size(len(ids) + len(files))
    uploads = [
        await read_upload(f, label=f"images[{n}]", max_bytes=state.settings.max_upload_bytes)
        for n, f in enumerate(files)
    ]
    if ids:
        await engine.run(lookup_vectors, engine, ids)  # unknown ids fail before any upload is embedded
    up_emb = (await embed_uploads(uploads, engine=engine, cache=cache, limits=state.image_limits,
                                  gate=state.decode_gate, ttl_s=state.settings.cache_embedding_ttl_s)).vectors
    return json_response(await engine.run(_by_ids, engine, ids, up_emb))


@router.post("/fill-in-the-blank", response_model=FITBResponse, summary="Rank candidates to complete an outfit",
             responses=errors(400, 404, 413, 422, 503))
async def post_fitb(req: FITBRequest, engine: EngineDep) -> FITBResponse:
    return await engine.run(_fitb, engine, req)
