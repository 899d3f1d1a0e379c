"""Which categories stylists put together: counts over the catalog's training outfits, kept in the manifest.

The service's outfit generation (`POST /v1/outfits/complete`) fills the categories that commonly co-occur
with the seeds' when a request names none; the counts are taken at build time, from the same catalog.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from catalog.polyvore import SPLIT_KINDS

log = logging.getLogger(__name__)
MANIFEST_KEY = "category_cooccurrence"


def count_cooccurrence(outfits: Iterable[Sequence[str]]) -> dict[str, Any]:
    """Outfits given as their items' categories -> {outfits, per_category, pairs}: how many outfits hold a
    category, and how many hold both of two (each outfit counts once, however many items it has of one)."""
    n = 0
    per: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for cats in outfits:
        present = sorted(set(cats))
        n += 1
        per.update(present)
        pairs.update((a, b) for a in present for b in present if a != b)
    nested: dict[str, dict[str, int]] = {}
    for (a, b), v in sorted(pairs.items()):
        nested.setdefault(a, {})[b] = v
    return {"outfits": n, "per_category": dict(sorted(per.items())), "pairs": nested}


def dataset_cooccurrence(root: Path, categories: dict[str, str]) -> dict[str, Any] | None:
    """Counts over `{kind}/train.json` of a Polyvore-layout dataset (nondisjoint first); None without one.

    `categories` maps item id -> category; outfit items missing from it are skipped.
    """
    for kind in SPLIT_KINDS:
        path = Path(root) / kind / "train.json"
        if not path.is_file():
            continue
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            outfits = [[categories[str(it["item_id"])] for it in o["items"] if str(it["item_id"]) in categories]
                       for o in raw]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            log.warning("%s: cannot count category co-occurrence (%s); outfit targets default to all", path, e)
            return None
        return {"source": f"{kind}/train.json", **count_cooccurrence(o for o in outfits if len(o) >= 2)}
    return None
