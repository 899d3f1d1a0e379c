"""POST /v1/embed: an uploaded image -> its L2-normalised embedding."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import CacheDep, EngineDep, StateDep
from service.api.parsing import (
    binary_field,
    form_files,
    media_type,
    read_form,
    request_body,
    unknown_fields,
    unsupported,
)
from service.errors import InvalidInputError
from service.schemas import EmbedResponse
from service.uploads import embed_uploads, read_upload

router = APIRouter(prefix="/v1", tags=["embed"])

EMBED_MULTIPART = {
    "type": "object",
    "required": ["image"],
    "additionalProperties": False,
    "properties": {"image": binary_field("the photo to embed")},
}


@router.post("/embed", response_model=EmbedResponse, openapi_extra=request_body(None, EMBED_MULTIPART),
             summary="Embedding of an uploaded image")
async def post_embed(request: Request, state: StateDep, engine: EngineDep, cache: CacheDep) -> EmbedResponse:
    if media_type(request) != "multipart/form-data":
        raise unsupported(request, ("multipart/form-data",))
    form = await read_form(request)
    unknown_fields(form, {"image"})
    files = form_files(form, "image")
    if len(files) != 1:
        raise InvalidInputError("send exactly one file in the 'image' field", field="image")
    upload = await read_upload(files[0], label="image", max_bytes=state.settings.max_upload_bytes)
    vecs, cached = await embed_uploads([upload], engine=engine, cache=cache, limits=state.image_limits,
                                       ttl_s=state.settings.cache_embedding_ttl_s)
    return EmbedResponse(embedding=[float(v) for v in vecs[0]], dim=int(vecs.shape[1]),
                         model_version=engine.model_version, cached=cached[0])
