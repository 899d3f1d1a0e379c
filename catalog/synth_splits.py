"""Split a synthetic outfit collection into Polyvore-style splits with negatives and FITB questions.

`nondisjoint`: outfits shuffled into train/valid/test over one shared item pool.
`disjoint`: a set of "cold" items is held out of every train outfit; each valid/test outfit holds at
least one, and every FITB answer and every swapped-in item of a valid/test negative is cold, so the
evaluation asks about products with no outfit label (the Mango README's cold-start split).
Wrong answers and swapped-in items come from other outfits of the same split, the same semantic
category, and a different theme, so a "wrong" item is never secretly a right one. A shop's real outfits
(`catalog.shop_import`) have no themes: each item is its own theme there, so any other item of the
category qualifies, as in Polyvore; an item of the outfit itself never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from catalog.types import CompatibilityExample, FITBQuestion, Outfit, SplitData

FITB_ANSWERS = 4


@dataclass(frozen=True)
class Truth:
    """Per-item ground truth the split builder needs; items of one theme never stand in for each other."""

    category: Mapping[str, str]
    theme: Mapping[str, str]


def _pool(outfits: Sequence[Outfit], eligible: set[str] | None, truth: Truth) -> dict[str, list[str]]:
    """category -> sorted item ids that appear in these outfits (and are eligible as answers/swaps)."""
    out: dict[str, set[str]] = {}
    for o in outfits:
        for i in o.item_ids:
            if eligible is None or i in eligible:
                out.setdefault(truth.category[i], set()).add(i)
    return {c: sorted(v) for c, v in out.items()}


def _rivals(pool: Mapping[str, list[str]], item: str, truth: Truth, outfit: Sequence[str]) -> list[str]:
    """Same-category items of another theme than `item`'s and not in `outfit`: wrong answers, negative swaps."""
    theme = truth.theme[item]
    return [j for j in pool.get(truth.category[item], []) if truth.theme[j] != theme and j not in outfit]


def _fitb(
    o: Outfit, pool: Mapping[str, list[str]], eligible: set[str] | None, truth: Truth, rng: np.random.Generator
) -> FITBQuestion | None:
    blanks = [
        p
        for p, i in enumerate(o.item_ids)
        if (eligible is None or i in eligible) and len(_rivals(pool, i, truth, o.item_ids)) >= FITB_ANSWERS - 1
    ]
    if not blanks:
        return None
    p = blanks[int(rng.integers(len(blanks)))]
    right = o.item_ids[p]
    rivals = _rivals(pool, right, truth, o.item_ids)
    wrong = [rivals[int(k)] for k in rng.choice(len(rivals), size=FITB_ANSWERS - 1, replace=False)]
    answers = [right, *wrong]
    order = rng.permutation(FITB_ANSWERS)
    return FITBQuestion(
        set_id=o.set_id,
        question=tuple(i for k, i in enumerate(o.item_ids) if k != p),
        answers=tuple(answers[int(k)] for k in order),
        correct=int(np.flatnonzero(order == 0)[0]),
        blank_position=p + 1,
    )


def _negative(
    o: Outfit, pool: Mapping[str, list[str]], truth: Truth, rng: np.random.Generator
) -> CompatibilityExample | None:
    """The outfit with between half and all of its items swapped for same-category rivals."""
    swappable = [p for p, i in enumerate(o.item_ids) if _rivals(pool, i, truth, o.item_ids)]
    if not swappable:
        return None
    n = len(o.item_ids)
    k = min(len(swappable), int(rng.integers((n + 1) // 2, n + 1)))
    ids = list(o.item_ids)
    for p in sorted(int(x) for x in rng.choice(swappable, size=k, replace=False)):
        rivals = _rivals(pool, ids[p], truth, ids)  # never an item the outfit already holds
        if rivals:  # empty only when earlier swaps took the last rivals (two items of one category)
            ids[p] = rivals[int(rng.integers(len(rivals)))]
    return CompatibilityExample(0, tuple(ids))


def build_split(
    kind: str,
    name: str,
    outfits: Sequence[Outfit],
    *,
    truth: Truth,
    rng: np.random.Generator,
    eligible: set[str] | None = None,
) -> SplitData:
    """FITB questions and compatibility lines (one positive and one negative per outfit) for a split.

    `eligible`, when given, restricts FITB answers and swapped-in items to those ids.
    """
    pool = _pool(outfits, eligible, truth)
    fitb: list[FITBQuestion] = []
    lines: list[CompatibilityExample] = []
    for o in outfits:
        q = _fitb(o, pool, eligible, truth, rng)
        if q is not None:
            fitb.append(q)
        lines.append(CompatibilityExample(1, o.item_ids))
        neg = _negative(o, pool, truth, rng)
        if neg is not None:
            lines.append(neg)
    order = rng.permutation(len(lines))
    return SplitData(kind, name, list(outfits), fitb, [lines[int(k)] for k in order])


def _cut(outfits: Sequence[Outfit], fractions: Sequence[float]) -> dict[str, list[Outfit]]:
    n = len(outfits)
    n_valid = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    n_train = n - n_valid - n_test
    return {
        "train": list(outfits[:n_train]),
        "valid": list(outfits[n_train : n_train + n_valid]),
        "test": list(outfits[n_train + n_valid :]),
    }


def nondisjoint_splits(
    outfits: Sequence[Outfit], *, truth: Truth, rng: np.random.Generator, fractions: Sequence[float] = (0.7, 0.1, 0.2)
) -> dict[str, SplitData]:
    order = rng.permutation(len(outfits))
    parts = _cut([outfits[int(k)] for k in order], fractions)
    return {name: build_split("nondisjoint", name, part, truth=truth, rng=rng) for name, part in parts.items()}


def disjoint_splits(
    outfits: Sequence[Outfit], *, truth: Truth, rng: np.random.Generator, eval_fraction: float = 0.3
) -> tuple[dict[str, SplitData], set[str]]:
    """Cold-start splits; returns them and the cold item ids (in no train outfit)."""
    users: dict[str, list[int]] = {}
    for n, o in enumerate(outfits):
        for i in o.item_ids:
            users.setdefault(i, []).append(n)
    # Hold out random items until the outfits touching them make up `eval_fraction` of all outfits.
    ids = list(users)
    cold: set[str] = set()
    held: set[int] = set()
    for k in rng.permutation(len(ids)):
        if len(held) >= eval_fraction * len(outfits):
            break
        item = ids[int(k)]
        cold.add(item)
        held.update(users[item])
    train = [o for n, o in enumerate(outfits) if n not in held]
    evaluation = [outfits[n] for n in sorted(held)]
    evaluation = [evaluation[int(k)] for k in rng.permutation(len(evaluation))]
    n_valid = len(evaluation) // 3
    splits = {
        "train": build_split("disjoint", "train", train, truth=truth, rng=rng),
        "valid": build_split("disjoint", "valid", evaluation[:n_valid], truth=truth, rng=rng, eligible=cold),
        "test": build_split("disjoint", "test", evaluation[n_valid:], truth=truth, rng=rng, eligible=cold),
    }
    return splits, cold
