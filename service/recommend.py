"""Query logic on top of an Engine: complementary items, item views, category inference."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np

from index.filters import FilterError, ItemFilter
from index.store import ItemRecord
from service.engine import Engine
from service.errors import FilterRequestError, InvalidInputError, UnknownCategoryError, UnknownItemsError
from service.schemas import CategoryGroup, ComplementaryOptions, Filters, ItemOut, ScoredItem

OutT = TypeVar("OutT", bound=ItemOut)

# Neighbours that vote on an upload's category when the client does not say what it is.
INFER_NEIGHBOURS = 10


def item_out(engine: Engine, item_id: str) -> ItemOut:
    rec = engine.index.get_items([item_id]).get(item_id)
    if rec is None:
        raise UnknownItemsError([item_id])
    return record_out(rec, ItemOut)


def record_out(rec: ItemRecord, cls: type[OutT], **extra: Any) -> OutT:
    """The API view of a catalog record as `cls` (ItemOut or a subclass whose extra fields come in `extra`)."""
    return cls(
        id=rec.item_id, category=rec.category, title=rec.title, price=rec.price, url=rec.url,
        image_url=f"/images/{quote(rec.item_id, safe='')}" if rec.image_path else None,
        attributes=dict(rec.attributes), **extra,
    )


def item_filter(engine: Engine, filters: Filters | None) -> ItemFilter | None:
    """The request's filters checked against this index's attributes (a 422 naming the known ones);
    None when there is nothing to filter."""
    if filters is None:
        return None
    try:
        flt = ItemFilter.of(price_min=filters.price_min, price_max=filters.price_max,
                            attributes=filters.attributes())
        engine.index.check_filter(flt)
    except FilterError as e:
        raise FilterRequestError(str(e), unknown=e.unknown, known=e.known) from e
    return None if flt.empty else flt


def resolve_items(engine: Engine, item_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Catalog embeddings and categories of ids, in order, from one metadata query; a 404 naming every
    unknown id otherwise."""
    found = engine.index.resolve(item_ids)
    missing = [i for i in dict.fromkeys(item_ids) if i not in found]
    if missing:
        raise UnknownItemsError(missing)
    return engine.index.vectors_of_rows([found[i][0] for i in item_ids]), [found[i][1] for i in item_ids]


def lookup_vectors(engine: Engine, item_ids: Sequence[str]) -> np.ndarray:
    """Catalog embeddings of ids; a 404 naming every unknown id otherwise."""
    return resolve_items(engine, item_ids)[0]


def item_categories(engine: Engine, item_ids: Sequence[str]) -> list[str]:
    return resolve_items(engine, item_ids)[1]


def infer_category(engine: Engine, query: np.ndarray) -> tuple[str, list[str]]:
    """Score-weighted vote of the nearest catalog items; returns (category, neighbour ids)."""
    hits = engine.index.search(query[None, :], k=INFER_NEIGHBOURS)[0]
    if not hits:
        raise InvalidInputError("the index is empty; cannot infer the upload's category")
    votes: dict[str, float] = defaultdict(float)
    for h in hits:
        # Shift cosine into (0, 2] so dissimilar neighbours still count a little, never negatively.
        votes[h.category] += 1.0 + float(h.score)
    best = max(sorted(votes), key=lambda c: votes[c])
    return best, [h.item_id for h in hits]


def sample_category(engine: Engine, category: str, *, limit: int, seed: int) -> list[ItemOut]:
    """A varied, reproducible page of a category for browsing: the items nearest a seeded random direction."""
    check_categories(engine, [category])
    direction = np.random.default_rng(seed).standard_normal((1, engine.index.dim)).astype(np.float32)
    hits = engine.index.search(direction, k=limit, category=category)[0]
    records = engine.index.get_items([h.item_id for h in hits])
    return [record_out(r, ItemOut) for r in (records.get(h.item_id) for h in hits) if r is not None]


def check_categories(engine: Engine, names: Iterable[str]) -> None:
    known = engine.index.categories()
    unknown = [c for c in names if c not in known]
    if unknown:
        raise UnknownCategoryError(unknown, list(known))


def complementary(
    engine: Engine,
    query: np.ndarray,
    *,
    query_categories: Sequence[str],
    query_ids: Sequence[str],
    options: ComplementaryOptions,
) -> list[CategoryGroup]:
    """Nearest items of each target category, top-k overall, grouped by category best-first."""
    known = engine.index.categories()
    if options.categories is not None:
        check_categories(engine, options.categories)
        wanted = list(dict.fromkeys(options.categories))
    else:
        wanted = sorted(known)
    targets = [c for c in wanted if c not in set(query_categories)]
    if not targets:
        raise InvalidInputError(
            f"no target category left: the query already covers {sorted(set(query_categories))}; "
            "ask for other categories"
        )
    flt = item_filter(engine, options.filters)
    exclude = tuple(dict.fromkeys([*query_ids, *options.exclude]))
    excluded = set(exclude)
    # Hits carry their records (one metadata query for all categories), so the answer needs no other look-up.
    per_category = engine.index.search_categories(
        query, targets, k=options.per_category, exclude=exclude, records=True, filters=flt
    )
    scored = [
        (hit.score, hit.item_id, cat, hit.record)
        for cat, hits in per_category.items()
        for hit in hits
        if hit.item_id not in excluded  # the contract, whatever the index does with `exclude`
    ]
    scored.sort(key=lambda t: (-t[0], t[1]))
    groups: dict[str, list[ScoredItem]] = {}
    for score, _, cat, rec in scored[: options.k]:
        assert rec is not None  # search_categories(records=True) attaches every hit's record
        groups.setdefault(cat, []).append(record_out(rec, ScoredItem, score=score))
    return [CategoryGroup(category=c, items=items) for c, items in groups.items()]
