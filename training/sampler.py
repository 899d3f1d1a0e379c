"""Labeled/unlabeled split by α and the paper's triplet sampling from labeled outfits.

A triplet (A, P, N): A and P from the same outfit with different semantic categories; N a random item of
P's category that is not in the outfit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from catalog.types import Item, Outfit


class SamplingError(ValueError):
    """The labeled outfits cannot produce a valid triplet (e.g. no outfit spans two categories)."""


class Triplet(NamedTuple):
    anchor: str
    positive: str
    negative: str


def split_labeled(outfits: Sequence[Outfit], fraction: float, *, seed: int) -> tuple[list[Outfit], list[Outfit]]:
    """A seeded `fraction` of outfits stays labeled (at least one); the rest lose their outfit label."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labeled fraction must be in (0, 1], not {fraction}")
    if not outfits:
        raise SamplingError("no training outfits to split")
    n_labeled = max(1, round(fraction * len(outfits)))
    order = np.random.default_rng([seed, 0x1ABE1]).permutation(len(outfits))
    keep = set(order[:n_labeled].tolist())
    labeled = [o for k, o in enumerate(outfits) if k in keep]
    unlabeled = [o for k, o in enumerate(outfits) if k not in keep]
    return labeled, unlabeled


def unlabeled_pool(
    *, dataset_unlabeled: Iterable[str], unlabeled_outfits: Iterable[Outfit], labeled_outfits: Iterable[Outfit]
) -> list[str]:
    """Items of unlabeled outfits plus the dataset's unlabeled items, minus anything a labeled outfit uses."""
    labeled = {i for o in labeled_outfits for i in o.item_ids}
    pool = set(dataset_unlabeled) | {i for o in unlabeled_outfits for i in o.item_ids}
    return sorted(pool - labeled)


class TripletSampler:
    """Draws triplets from labeled outfits; negatives come from the labeled items of P's category.

    `fallback_items` (e.g. the whole catalog, which has category metadata but no outfit label) supplies a
    negative only when no labeled item of that category lies outside the outfit.
    """

    def __init__(
        self, outfits: Sequence[Outfit], items: Mapping[str, Item], *, fallback_items: Iterable[str] = ()
    ) -> None:
        self.items = items
        self.outfits = [o for o in outfits if len({items[i].category for i in o.item_ids}) >= 2]
        if not self.outfits:
            raise SamplingError("no labeled outfit has items of two different categories; cannot form triplets")
        self.by_category = self._group({i for o in self.outfits for i in o.item_ids})
        self.fallback = self._group(set(fallback_items))

    def _group(self, ids: Iterable[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for i in sorted(ids):
            groups[self.items[i].category].append(i)
        return dict(groups)

    def default_epoch_size(self) -> int:
        return sum(len(o.item_ids) for o in self.outfits)

    def _negative(self, category: str, outfit: set[str], rng: np.random.Generator) -> str | None:
        for pool in (self.by_category.get(category, []), self.fallback.get(category, [])):
            if len(pool) > len(outfit):
                # Rejection sampling: the outfit holds only a few of the category's items.
                for _ in range(64):
                    cand = pool[int(rng.integers(len(pool)))]
                    if cand not in outfit:
                        return cand
            choices = [i for i in pool if i not in outfit]
            if choices:
                return choices[int(rng.integers(len(choices)))]
        return None

    def sample(self, n: int, rng: np.random.Generator) -> list[Triplet]:
        out: list[Triplet] = []
        misses = 0
        while len(out) < n:
            outfit = self.outfits[int(rng.integers(len(self.outfits)))]
            ids = list(outfit.item_ids)
            a = ids[int(rng.integers(len(ids)))]
            positives = [i for i in ids if self.items[i].category != self.items[a].category]
            if not positives:
                continue  # every other item shares a's category; redraw
            p = positives[int(rng.integers(len(positives)))]
            neg = self._negative(self.items[p].category, set(ids), rng)
            if neg is None:
                misses += 1
                if misses > 100 * max(n, 1):
                    raise SamplingError("no category has a negative outside the outfits; dataset too small")
                continue
            out.append(Triplet(a, p, neg))
        return out
