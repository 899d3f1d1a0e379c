"""Catalog views: GET /v1/items/{id}, GET /v1/categories, GET /v1/filters, GET /images/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from service.api.deps import EngineDep
from service.api.responses import errors
from service.errors import ServiceError, UnknownItemsError
from service.recommend import item_out, sample_category
from service.schemas import CATEGORIES_MARK, CategoriesResponse, CategoryOut, FiltersResponse, ItemList, ItemOut

router = APIRouter(tags=["catalog"])

_IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                ".gif": "image/gif", ".bmp": "image/bmp"}


@router.get("/v1/items", response_model=ItemList, summary="Browse a category (a seeded, varied sample)",
            responses=errors(422, 503))
async def list_items(
    engine: EngineDep,
    category: Annotated[str, Query(min_length=1, max_length=100, json_schema_extra=CATEGORIES_MARK)],
    limit: Annotated[int, Query(ge=1, le=100)] = 12,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> ItemList:
    items = await engine.run(sample_category, engine, category, limit=limit, seed=seed)
    return ItemList(category=category, seed=seed, items=items)


@router.get("/v1/items/{item_id}", response_model=ItemOut, summary="One catalog item", responses=errors(404, 503))
async def get_item(item_id: str, engine: EngineDep) -> ItemOut:
    return item_out(engine, item_id)


@router.get("/v1/categories", response_model=CategoriesResponse, summary="Categories and their item counts",
            responses=errors(503))
async def get_categories(engine: EngineDep) -> CategoriesResponse:
    cats = engine.index.categories()
    return CategoriesResponse(categories=[CategoryOut(name=c, count=n) for c, n in sorted(cats.items())])


@router.get("/v1/filters", response_model=FiltersResponse, summary="What results can be filtered on",
            responses=errors(503))
async def get_filters(engine: EngineDep) -> FiltersResponse:
    """The price range and the catalog's attributes with their values: the keys `filters` accepts."""
    info = await engine.run(engine.index.describe_filters)
    return FiltersResponse.model_validate({**info, "index_version": engine.index_version})


@router.get("/images/{item_id}", response_class=FileResponse, summary="A catalog item's image",
            responses={200: {"content": {"image/jpeg": {}}}, **errors(404, 503)})
async def get_image(item_id: str, engine: EngineDep) -> FileResponse:
    # The path comes from the index for a known id, never from the request: no traversal is possible.
    if not engine.index.has(item_id):
        raise UnknownItemsError([item_id])
    path = engine.index.image_path(item_id)
    if path is None or not path.is_file():
        raise ServiceError(f"item {item_id} has no image", code="no_image", status=404)
    return FileResponse(path, media_type=_IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                        headers={"Cache-Control": "public, max-age=86400"})
