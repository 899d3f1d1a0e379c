"""Query logic on top of an Engine: complementary items, item views, category inference."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np

from index.filters import FilterError, ItemFilter
from index.reader import Hit
from index.store import ItemRecord
from service.diversity import mmr_orders, pool_size
from service.engine import Engine
from service.errors import (
    FilterRequestError,
    InvalidInputError,
    UnanswerableError,
    UnknownCategoryError,
    UnknownItemsError,
)
from service.schemas import CategoryGroup, ComplementaryOptions, Filters, ItemOut, ScoredItem
from service.scoring import completion_distances

OutT = TypeVar("OutT", bound=ItemOut)

# Neighbours that vote on an upload's category when the client does not say what it is and the checkpoint
# has no category head.
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


def _vote(engine: Engine, query: np.ndarray) -> tuple[str, list[str], float]:
    """Score-weighted vote of the nearest catalog items: (category, neighbour ids, the winner's share)."""
    hits = engine.index.search(query[None, :], k=INFER_NEIGHBOURS)[0]
    if not hits:
        raise InvalidInputError("the index is empty; cannot infer the upload's category")
    votes: dict[str, float] = defaultdict(float)
    for h in hits:
        # Shift cosine into (0, 2] so dissimilar neighbours still count a little, never negatively.
        votes[h.category] += 1.0 + float(h.score)
    best = max(sorted(votes), key=lambda c: votes[c])
    return best, [h.item_id for h in hits], votes[best] / sum(votes.values())


@dataclass(frozen=True)
class InferredCategory:
    category: str
    confidence: float
    source: str  # "head" or "neighbours"
    neighbours: list[str]


def upload_category(engine: Engine, query: np.ndarray, probs: np.ndarray | None) -> InferredCategory:
    """An upload's category: the checkpoint's category head (its probabilities `probs`, computed with the
    embedding) when it has one, else the neighbours' vote (confidence = the winner's share of the votes)."""
    if engine.category_head is not None and probs is not None:
        category, p = engine.category_head.pick(probs)
        if category in engine.index.categories():
            return InferredCategory(category, p, "head", [])
    category, neighbours, share = _vote(engine, query)
    return InferredCategory(category, share, "neighbours", neighbours)


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
    members: np.ndarray | None = None,
) -> list[CategoryGroup]:
    """Nearest items of each target category (re-ranked by MMR when `options.diversity` > 0), top-k overall,
    grouped by category best-first.

    `members` are the query's item embeddings (default: the query itself); each item's `compatibility` is
    the calibrated score of those items plus it, as POST /v1/compatibility would give.
    """
    known = engine.index.categories()
    if options.categories is not None:
        check_categories(engine, options.categories)
        wanted = list(dict.fromkeys(options.categories))
    else:
        wanted = sorted(known)
    targets = [c for c in wanted if c not in set(query_categories)]
    if not targets:
        raise UnanswerableError(
            f"no target category left: the query already covers {sorted(set(query_categories))}; "
            "ask for other categories", code="no_target_category",
        )
    picked = diverse_picks(engine, query, targets, k=options.per_category, diversity=options.diversity,
                           exclude=[*query_ids, *options.exclude], filters=item_filter(engine, options.filters))
    # Across categories, best first; an item never comes before an earlier MMR pick of its own category
    # (running minimum), so cutting at k keeps each category's most varied prefix. At diversity 0 the key is
    # the score itself: today's order.
    scored = []
    for cat, hits in picked.items():
        key = np.inf
        for hit in hits:
            key = min(key, hit.score)
            scored.append((key, hit.item_id, cat, hit))
    scored.sort(key=lambda t: (-t[0], t[1]))
    top = scored[: options.k]
    outfit = query[None, :] if members is None else members
    cand = engine.index.vectors_of_rows([hit.row for _, _, _, hit in top])
    compat = engine.calibration.probabilities(completion_distances(outfit, cand)) if top else np.zeros(0)
    groups: dict[str, list[ScoredItem]] = {}
    for (_, _, cat, hit), p in zip(top, compat, strict=True):
        assert hit.record is not None  # diverse_picks resolves every pick with its record
        groups.setdefault(cat, []).append(
            record_out(hit.record, ScoredItem, score=hit.score, compatibility=round(float(p), 6))
        )
    return [CategoryGroup(category=c, items=items) for c, items in groups.items()]


def diverse_picks(
    engine: Engine, query: np.ndarray, targets: Sequence[str], *, k: int, diversity: float, exclude: Sequence[str],
    filters: ItemFilter | None,
) -> dict[str, list[Hit]]:
    """Per target category, up to k of the query's nearest items that `filters` allow, in MMR order at
    diversity > 0, never an `exclude`d id; each hit carries its record.

    Each category's pool (`pool_size`: 4x the picks at the default diversity) is re-ranked on its scores and
    rows alone; only the picks are then resolved, in one metadata query for all categories.
    """
    excluded = tuple(dict.fromkeys(exclude))
    pools = engine.index.search_category_rows(query, targets, k=pool_size(k, diversity), exclude=excluded,
                                              filters=filters)
    chosen = _diverse_rows(list(pools.values()), engine, k=k, diversity=diversity)
    never = set(excluded)
    return {
        cat: [h for h in hits if h.item_id not in never]  # the contract, whatever the index does
        for cat, hits in zip(pools, engine.index.hits_of_rows(chosen, records=True), strict=True)
    }


def _diverse_rows(pools: Sequence[Sequence[tuple[float, int]]], engine: Engine, *, k: int, diversity: float
                  ) -> list[list[tuple[float, int]]]:
    """Per pool of (score, row) best first, up to k of them in MMR order (the first k at diversity 0); the
    pools' vectors are read in one gather."""
    if diversity <= 0:
        return [list(p[:k]) for p in pools]
    vectors = engine.index.vectors_of_rows([r for p in pools for _, r in p])
    ends = np.cumsum([len(p) for p in pools])
    orders = mmr_orders([np.array([s for s, _ in p], dtype=np.float64) for p in pools],
                        np.split(vectors, ends[:-1]), k=k, diversity=diversity)
    return [[pool[i] for i in order] for pool, order in zip(pools, orders, strict=True)]
