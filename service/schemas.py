"""Typed request and response models of the /v1 API (they are the OpenAPI schema)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

API_VERSION = "1.0.0"  # the OpenAPI version; also the first part of every cache key
MAX_OUTFIT_ITEMS = 20
# Chosen on the Mango test outfits (docs/SERVICE.md, "Complete the look"): the most variety measured that
# costs at most 2 points of top-5 hit rate (3.38 % -> 2.95 %, 800 outfits; 0.7 was the largest value tried).
DEFAULT_DIVERSITY = 0.7
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Marks in the JSON schema where the served OpenAPI document puts what the loaded index accepts
# (service/api/openapi.py): its categories as an enum, its filter attributes as typed properties.
CATEGORIES_MARK = {"x-enum-from": "index-categories"}
FILTERS_MARK = {"x-properties-from": "index-filters"}
CategoryName = Annotated[str, StringConstraints(min_length=1, max_length=100), Field(json_schema_extra=CATEGORIES_MARK)]
# A catalog attribute value: booleans stay booleans (strict), numbers are numbers, strings are strings.
AttrScalar = StrictBool | StrictInt | StrictFloat | Annotated[str, StringConstraints(max_length=200)]
AttrCondition = AttrScalar | Annotated[list[AttrScalar], Field(min_length=1, max_length=200)]


def _distinct(ids: list[str]) -> list[str]:
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        shown = [i if len(i) <= 80 else i[:80] + "…" for i in repeated[:5]]
        raise ValueError(f"an outfit lists each item once; repeated: {shown}")
    return ids


# An outfit scored with an item twice would count its distance to itself (0): refused, not de-duplicated,
# so the client learns its request was wrong (docs/SERVICE.md).
DistinctItemIds = Annotated[list[ItemId], AfterValidator(_distinct), Field(json_schema_extra={"uniqueItems": True})]


class _Strict(BaseModel):
    # Unknown fields are an error: a misspelt option must not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class Filters(BaseModel):
    """Business filters: a price range, and any catalog attribute by name (`GET /v1/filters` lists them).

    An attribute maps to one value (equality) or a list (membership), e.g.
    `{"price_max": 80, "in_stock": true, "brand": ["acme", "bolt"]}`. Items missing a filtered field never
    match; an attribute the catalog does not have is a 422 naming the known ones.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={
        **FILTERS_MARK, "example": {"price_min": 10, "price_max": 80, "in_stock": True, "brand": ["acme", "bolt"]}})
    __pydantic_extra__: dict[str, AttrCondition] = Field(init=False)  # typed attribute conditions

    # Strict: a number, as the schema says ("5" is refused, not read as 5).
    price_min: StrictInt | StrictFloat | None = Field(default=None, description="lowest price allowed (inclusive)")
    price_max: StrictInt | StrictFloat | None = Field(default=None, description="highest price allowed (inclusive)")

    @model_validator(mode="after")
    def _canonical(self) -> Filters:
        """Attributes sorted by name and list values sorted and deduplicated: equal filters serialise (and
        so cache) identically."""
        extra = self.__pydantic_extra__ or {}
        canon: dict[str, AttrCondition] = {}
        for name in sorted(extra):
            value = extra[name]
            if isinstance(value, list):
                value = sorted(dict.fromkeys(value), key=lambda v: (type(v).__name__, v))
            canon[name] = value
        self.__pydantic_extra__ = canon
        return self

    def attributes(self) -> dict[str, AttrCondition]:
        return dict(self.__pydantic_extra__ or {})


class ComplementaryOptions(_Strict):
    k: int = Field(default=20, ge=1, le=100, description="maximum number of items returned in total")
    per_category: int = Field(default=5, ge=1, le=50, description="maximum items per category")
    categories: list[CategoryName] | None = Field(
        default=None, max_length=50, description="target categories (default: every other category)"
    )
    exclude: list[ItemId] = Field(default_factory=list, max_length=1000, description="item ids never returned")
    filters: Filters | None = Field(default=None, description="only items these business filters allow")
    diversity: float = Field(
        default=DEFAULT_DIVERSITY, ge=0.0, le=1.0,
        description="0 = nearest first; higher trades closeness for variety within each category (MMR)",
    )


class ComplementaryRequest(ComplementaryOptions):
    """JSON query: one catalog item, or several (the outfit so far)."""

    item_ids: list[ItemId] = Field(min_length=1, max_length=MAX_OUTFIT_ITEMS)


class CompatibilityRequest(_Strict):
    item_ids: DistinctItemIds = Field(min_length=2, max_length=MAX_OUTFIT_ITEMS)


class FITBRequest(_Strict):
    outfit: DistinctItemIds = Field(min_length=1, max_length=MAX_OUTFIT_ITEMS - 1)
    candidates: list[ItemId] = Field(min_length=1, max_length=100)
    filters: Filters | None = Field(
        default=None, description="candidates these filters reject are left out of the ranking (see filtered_out)"
    )


# Multipart forms: the text fields of the upload variants, validated by the same types as the JSON bodies.
# List fields accept repeated fields or comma-separated values (service.api.parsing.form_model).


class ComplementaryForm(ComplementaryOptions):
    """Multipart query: a product photo in the `image` file part, and these text fields."""

    category: CategoryName | None = Field(
        default=None, description="the photo's category; inferred from its nearest catalog items when absent"
    )


class CompatibilityForm(_Strict):
    """Multipart outfit: catalog item ids (text) and photos (`images` file parts), 2 to 20 in all."""

    item_ids: DistinctItemIds = Field(default_factory=list, max_length=MAX_OUTFIT_ITEMS,
                                      description="repeated or comma-separated")


class ItemOut(BaseModel):
    id: str
    category: str
    title: str
    price: float | None
    url: str
    image_url: str | None
    attributes: dict[str, AttrScalar] = Field(default_factory=dict, description="the catalog's typed attributes")


class ItemList(BaseModel):
    category: str
    seed: int
    items: list[ItemOut]


class ScoredItem(ItemOut):
    score: float = Field(description="cosine similarity to the query (higher = more compatible); used for ranking")
    compatibility: float = Field(
        ge=0, le=1,
        description="calibrated probability that the query's items and this one go together: what POST "
        "/v1/compatibility returns for them (for a one-item or photo query, the pair's score)",
    )


class CategoryGroup(BaseModel):
    category: str
    items: list[ScoredItem]


class QueryInfo(BaseModel):
    kind: str = Field(description="'items' or 'image'")
    item_ids: list[str]
    categories: list[str]
    category_inferred: bool = Field(description="true when the upload's category was inferred")
    inferred_from: list[str] = Field(default_factory=list, description="nearest catalog items used to infer it")
    category_source: str | None = Field(
        default=None, description="how the upload's category was found: 'given', 'head' (the checkpoint's "
        "category head) or 'neighbours' (a vote of the nearest catalog items)",
    )
    category_confidence: float | None = Field(default=None, description="probability of the inferred category")
    embedding_cached: bool | None = None


class ComplementaryResponse(BaseModel):
    query: QueryInfo
    groups: list[CategoryGroup]
    model_version: str
    index_version: str


class OutfitMember(BaseModel):
    ref: str = Field(description="item id, or 'upload:<n>' for the n-th uploaded image")
    kind: str
    category: str | None


class WeakestItem(BaseModel):
    ref: str
    position: int
    score_without: float


class CompatibilityResponse(BaseModel):
    score: float = Field(ge=0, le=1, description="probability the outfit is compatible")
    calibrated: bool
    calibration: str
    mean_distance: float
    items: list[OutfitMember]
    pairwise: list[list[float]]
    weakest: WeakestItem | None = Field(description="null for 2-item outfits (removal leaves nothing to score)")
    model_version: str


class FITBCandidate(ItemOut):
    rank: int
    score: float = Field(description="cosine similarity to the normalised outfit mean")
    mean_distance: float


class FITBResponse(BaseModel):
    outfit: list[str]
    ranked: list[FITBCandidate]
    filtered_out: list[str] = Field(default_factory=list, description="candidates the filters rejected")
    model_version: str


class CompleteOptions(_Strict):
    categories: list[CategoryName] | None = Field(
        default=None, max_length=MAX_OUTFIT_ITEMS - 1,
        description="target categories, one item each (default: those that commonly co-occur with the seeds' "
        "in the training outfits)",
    )
    n_outfits: int = Field(default=3, ge=1, le=10, description="how many outfits to return")
    diversity: float = Field(
        default=DEFAULT_DIVERSITY, ge=0.0, le=1.0,
        description="0 = the best-scoring outfits; higher = varied candidates and outfits sharing fewer items",
    )
    exclude: list[ItemId] = Field(default_factory=list, max_length=1000, description="item ids never added")
    filters: Filters | None = Field(default=None, description="only items these business filters allow are added")


class CompleteForm(CompleteOptions):
    """Multipart: seed item ids (text) and photos (`images` file parts), 1 to 19 seeds in all."""

    item_ids: list[ItemId] = Field(default_factory=list, max_length=MAX_OUTFIT_ITEMS - 1,
                                   description="seed item ids, repeated or comma-separated")
    image_categories: list[CategoryName] = Field(
        default_factory=list, max_length=MAX_OUTFIT_ITEMS - 1,
        description="the photos' categories, in order (default: inferred)",
    )


class CompleteRequest(CompleteOptions):
    """JSON: seeds are catalog items (multipart adds uploaded photos)."""

    item_ids: list[ItemId] = Field(min_length=1, max_length=MAX_OUTFIT_ITEMS - 1)


class SeedInfo(BaseModel):
    ref: str = Field(description="item id, or 'upload:<n>' for the n-th uploaded photo")
    kind: str = Field(description="'item' or 'upload'")
    category: str
    category_source: str = Field(description="'catalog', 'given', 'head' (category head) or 'neighbours'")
    category_confidence: float | None = Field(default=None, description="probability of the inferred category")


class OutfitEntry(BaseModel):
    ref: str
    kind: str = Field(description="'item' or 'upload'")
    role: str = Field(description="'seed' or 'added'")
    category: str
    item: ItemOut | None = Field(description="the catalog item (null for an uploaded photo)")
    score: float | None = Field(description="cosine to the seeds' query vector (added items)")
    compatibility: float | None = Field(
        description="calibrated score of the seeds plus this item, as POST /v1/compatibility gives (added items)"
    )
    contribution: float | None = Field(
        description="outfit score minus the score without this item (null for 2-item outfits)"
    )


class GeneratedOutfit(BaseModel):
    rank: int
    score: float = Field(ge=0, le=1, description="calibrated probability the whole outfit is compatible")
    mean_distance: float
    items: list[OutfitEntry]
    pairwise: list[list[float]] = Field(description="pairwise distances, in the order of `items`")


class SearchInfo(BaseModel):
    beam_width: int
    candidates_per_category: int
    evaluated: int = Field(description="partial outfits scored")


class CompleteResponse(BaseModel):
    seeds: list[SeedInfo]
    targets: list[str]
    targets_source: str = Field(description="'request', 'co-occurrence' or 'all-other-categories'")
    outfits: list[GeneratedOutfit]
    calibrated: bool
    search: SearchInfo
    model_version: str
    index_version: str


class PriceRange(BaseModel):
    min: float
    max: float


class AttributeInfo(BaseModel):
    type: str = Field(description="'number', 'boolean' or 'string'")
    values: dict[str, int] | None = Field(default=None, description="string attributes: value -> live items")
    min: float | None = Field(default=None, description="number attributes: smallest value")
    max: float | None = Field(default=None, description="number attributes: largest value")
    true: int | None = Field(default=None, description="boolean attributes: live items with true")
    false: int | None = Field(default=None, description="boolean attributes: live items with false")


class FiltersResponse(BaseModel):
    """What can be filtered on in this index: keys of `Filters` and the values they can take."""

    price: PriceRange | None
    attributes: dict[str, AttributeInfo]
    index_version: str


class EmbedResponse(BaseModel):
    embedding: list[float]
    dim: int
    normalized: bool = True
    model_version: str
    cached: bool


class CategoryOut(BaseModel):
    name: str
    count: int


class CategoriesResponse(BaseModel):
    categories: list[CategoryOut]


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str
    model_version: str | None = None
    index_version: str | None = None
    items: int | None = None
    backend: str | None = None
    calibrated: bool | None = None
    cache: str | None = None
    worker: int | None = Field(default=None, description="the answering worker's process id")


class ReloadRequest(_Strict):
    index: str | None = Field(default=None, max_length=4096, description="index root (default: the configured)")
    checkpoint: str | None = Field(default=None, max_length=4096)


class ReloadResponse(BaseModel):
    status: str
    previous: ReadyResponse
    current: ReadyResponse


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
