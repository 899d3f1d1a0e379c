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


@pytest.mark.slow
def test_mango_as_a_shop_export_converts_and_imports(mango_root: Path, tmp_path: Path) -> None:
    """benchmarks/mango_to_shop.py: the whole set converts (no photo copied); a 60-outfit sample imports cleanly."""
    import csv
    import importlib.util
    import json

    from catalog.shop_import import import_shop

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "mango_to_shop.py"
    spec = importlib.util.spec_from_file_location("mango_to_shop", script)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    full = mod.convert(mango_root, tmp_path / "full")
    assert full == {"products": 9007, "outfits": 6404, "products_in_outfits": full["products_in_outfits"]}
    with (tmp_path / "full" / "products.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(Path(r["image"]).is_absolute() and Path(r["image"]).is_relative_to(mango_root.resolve())
               for r in rows[:50])
    assert not list((tmp_path / "full").glob("*.jpg"))
    lines = (tmp_path / "full" / "outfits.jsonl").read_text(encoding="utf-8").splitlines()
    assert len({json.loads(line)["set_id"] for line in lines}) == 6404

    small = mod.convert(mango_root, tmp_path / "small", outfits=60, seed=1)
    assert small["outfits"] == 60 and small["products"] == 2 * small["products_in_outfits"]
    summary = import_shop(catalog=tmp_path / "small" / "products.csv", outfits=tmp_path / "small" / "outfits.jsonl",
                          out=tmp_path / "dataset", threads=1)
    assert summary.to_dict()["attributes"] == {"colour": "string", "fine_category": "string", "line": "string"}
    for kind in ("nondisjoint", "disjoint"):
        stats = dataset_stats(tmp_path / "dataset", kind)
        assert stats["ok"], stats["problems"][:5]
