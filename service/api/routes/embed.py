"""POST /v1/embed: an uploaded image -> its L2-normalised embedding."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import CacheDep, EngineDep, StateDep
from service.api.parsing import (
    MULTIPART,
    binary_field,
    media_type,
    multipart_schema,
    read_form,
    request_body,
    single_file,
    unknown_fields,
    unsupported,
)
from service.api.responses import errors
from service.schemas import EmbedResponse
from service.uploads import embed_form_image

router = APIRouter(prefix="/v1", tags=["embed"])

EMBED_MULTIPART = multipart_schema(None, {"image": binary_field("the photo to embed")}, ("image",))


@router.post("/embed", response_model=EmbedResponse, openapi_extra=request_body(None, EMBED_MULTIPART),
             summary="Embedding of an uploaded image", responses=errors(400, 413, 415, 422, 503))
async def post_embed(request: Request, state: StateDep, engine: EngineDep, cache: CacheDep) -> EmbedResponse:
    if media_type(request) != MULTIPART:
        raise unsupported(request, (MULTIPART,))
    form = await read_form(request)
    unknown_fields(form, {"image"})
    vec, cached, _ = await embed_form_image(single_file(form, "image"), state=state, engine=engine, cache=cache)
    return EmbedResponse(embedding=[float(v) for v in vec], dim=int(vec.shape[0]), model_version=engine.model_version,
                         cached=cached)
