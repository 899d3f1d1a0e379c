"""The real converted Mango photo set loads unchanged (skips where it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import PolyvoreDataset
from catalog.stats import dataset_stats

pytestmark = pytest.mark.mango


@pytest.mark.parametrize(("kind", "outfits"), [("nondisjoint", (5304, 300, 800)), ("disjoint", (5238, 133, 319))])
def test_mango_reads_with_no_problems(mango_root: Path, kind: str, outfits: tuple[int, int, int]) -> None:
    stats = dataset_stats(mango_root, kind, check_images=False)
    assert stats["ok"], stats["problems"][:5]
    assert stats["items"] == 9007
    assert tuple(stats["splits"][s]["outfits"] for s in ("train", "valid", "test")) == outfits
    assert len(stats["items_per_category"]) == 11


def test_mango_disjoint_answers_are_cold_start(mango_root: Path) -> None:
    ds = PolyvoreDataset(mango_root, "disjoint")
    train_items = ds.outfit_item_ids(["train"])
    test = ds.split("test")
    assert test.fitb and all(q.answers[q.correct] not in train_items for q in test.fitb)
    assert all(ds.image_path(q.answers[q.correct]).is_file() for q in test.fitb[:20])
