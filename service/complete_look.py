"""Complete the look on an Engine: seeds -> target categories -> candidates -> beam search -> answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from index.cooccurrence import MANIFEST_KEY
from index.reader import Hit
from service.completion import SearchBounds, beam_search, default_targets, pick_outfits
from service.engine import Engine
from service.errors import UnanswerableError
from service.recommend import check_categories, diverse_picks, item_filter, record_out, upload_category
from service.schemas import (
    MAX_OUTFIT_ITEMS,
    CompleteOptions,
    CompleteResponse,
    Filters,
    GeneratedOutfit,
    ItemOut,
    OutfitEntry,
    SearchInfo,
    SeedInfo,
)
from service.scoring import completion_distances, outfit_query_vector, score_outfit


@dataclass(frozen=True)
class Seeds:
    """The outfit so far: catalog items and uploaded photos, with their embeddings and categories."""

    infos: list[SeedInfo]
    vectors: np.ndarray
    ids: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, dim: int) -> Seeds:
        return cls([], np.zeros((0, dim), dtype=np.float32))

    @classmethod
    def of_items(cls, ids: Sequence[str], vectors: np.ndarray, categories: Sequence[str]) -> Seeds:
        infos = [SeedInfo(ref=i, kind="item", category=c, category_source="catalog")
                 for i, c in zip(ids, categories, strict=True)]
        return cls(infos, np.asarray(vectors, dtype=np.float32), list(ids))

    def with_uploads(
        self, engine: Engine, vectors: np.ndarray, categories: Sequence[str | None], probs: np.ndarray | None
    ) -> Seeds:
        """Photos after the items (refs upload:<n>); a missing category comes from the category head's
        probabilities `probs` (n, C), or the neighbours' vote without a head."""
        infos = list(self.infos)
        for n, (vec, given) in enumerate(zip(vectors, categories, strict=True)):
            if given:
                infos.append(SeedInfo(ref=f"upload:{n}", kind="upload", category=given, category_source="given"))
            else:
                found = upload_category(engine, vec, None if probs is None else probs[n])
                infos.append(SeedInfo(ref=f"upload:{n}", kind="upload", category=found.category,
                                      category_source=found.source,
                                      category_confidence=round(found.confidence, 6)))
        return Seeds(infos, np.concatenate([self.vectors, np.asarray(vectors, dtype=np.float32)]), self.ids)


def choose_targets(engine: Engine, seeds: Seeds, opts: CompleteOptions) -> tuple[list[str], str]:
    seed_cats = list(dict.fromkeys(s.category for s in seeds.infos))
    if opts.categories is not None:
        check_categories(engine, opts.categories)
        targets = [c for c in dict.fromkeys(opts.categories) if c not in seed_cats]
        source = "request"
    else:
        targets, source = default_targets(engine.index.manifest.get(MANIFEST_KEY), seed_cats,
                                          engine.index.categories())
    if not targets:
        raise UnanswerableError(
            f"no target category: the seeds cover {seed_cats}"
            + ("" if opts.categories is not None else " and nothing else commonly goes with them")
            + "; name the categories to add in 'categories'", code="no_target_category",
        )
    if len(seeds.infos) + len(targets) > MAX_OUTFIT_ITEMS:
        raise UnanswerableError(f"{len(seeds.infos)} seeds + {len(targets)} targets exceed the "
                                f"{MAX_OUTFIT_ITEMS}-item outfit limit", code="outfit_too_large",
                                count=len(seeds.infos) + len(targets))
    return targets, source


def candidates(engine: Engine, query: np.ndarray, targets: list[str], exclude: Sequence[str], *,
               k: int, diversity: float, filters: Filters | None) -> list[list[Hit]]:
    """Per target, up to k nearest items of the seeds' query vector that the filters allow (MMR-varied at
    diversity > 0)."""
    found = diverse_picks(engine, query, targets, k=k, diversity=diversity, exclude=exclude,
                          filters=item_filter(engine, filters))
    pools = [found[c] for c in targets]
    empty = [c for c, p in zip(targets, pools, strict=True) if not p]
    if empty:
        raise UnanswerableError(f"no items left to add in {empty} (after exclusions and filters)",
                                code="no_candidates", categories=empty)
    return pools


def complete_outfits(engine: Engine, seeds: Seeds, opts: CompleteOptions, bounds: SearchBounds) -> CompleteResponse:
    targets, source = choose_targets(engine, seeds, opts)
    query = outfit_query_vector(seeds.vectors)
    pools = candidates(engine, query, targets, [*seeds.ids, *opts.exclude], k=bounds.candidates,
                       diversity=opts.diversity, filters=opts.filters)
    pool_vectors = [engine.index.vectors_of_rows([h.row for h in p]) for p in pools]
    beams, evaluated = beam_search(seeds.vectors, pool_vectors, beam_width=max(bounds.beam_width, opts.n_outfits))
    cal = engine.calibration
    scores = cal.probabilities(np.array([b.mean_distance for b in beams])).tolist()
    seed_records = engine.index.get_items(seeds.ids)
    seed_entries = [
        OutfitEntry(ref=s.ref, kind=s.kind, role="seed", category=s.category,
                    item=record_out(seed_records[s.ref], ItemOut) if s.kind == "item" else None,
                    score=None, compatibility=None, contribution=None)
        for s in seeds.infos
    ]
    outfits = []
    for rank, b in enumerate(pick_outfits(beams, scores, n=opts.n_outfits, diversity=opts.diversity), start=1):
        hits = [pools[t][j] for t, j in enumerate(beams[b].picks)]
        added = np.stack([pool_vectors[t][j] for t, j in enumerate(beams[b].picks)])
        pair = cal.probabilities(completion_distances(seeds.vectors, added))
        s = score_outfit(np.concatenate([seeds.vectors, added]), cal)
        contrib = [None] * (len(seeds.infos) + len(hits)) if s.scores_without is None else [
            round(s.score - w, 6) for w in s.scores_without]
        entries = [e.model_copy(update={"contribution": contrib[n]}) for n, e in enumerate(seed_entries)]
        for n, (hit, p) in enumerate(zip(hits, pair, strict=True)):
            assert hit.record is not None  # diverse_picks resolves every pick with its record
            entries.append(OutfitEntry(ref=hit.item_id, kind="item", role="added", category=hit.category,
                                       item=record_out(hit.record, ItemOut), score=round(hit.score, 6),
                                       compatibility=round(float(p), 6), contribution=contrib[len(seed_entries) + n]))
        outfits.append(GeneratedOutfit(rank=rank, score=s.score, mean_distance=s.mean_distance, items=entries,
                                       pairwise=[[round(float(v), 6) for v in row] for row in s.pairwise]))
    return CompleteResponse(
        seeds=seeds.infos, targets=targets, targets_source=source, outfits=outfits, calibrated=engine.calibrated,
        search=SearchInfo(beam_width=max(bounds.beam_width, opts.n_outfits), candidates_per_category=bounds.candidates,
                          evaluated=evaluated),
        model_version=engine.model_version, index_version=engine.index_version,
    )
