"""`data import`: a generated shop catalog (real image files) -> a Polyvore-format dataset the reader accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from shop_catalog import ShopFiles, write_shop

from catalog import DatasetError, PolyvoreDataset
from catalog.polyvore import SPLIT_KINDS, SPLITS
from catalog.shop_import import META_FILE, MIN_OUTFITS, import_shop
from catalog.stats import dataset_stats
from outfit_compat.cli import main


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopFiles:
    return write_shop(tmp_path_factory.mktemp("shop"), items=200, outfits=80, fmt="csv")


@pytest.fixture(scope="module")
def imported(shop: ShopFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "ds"
    import_shop(catalog=shop.catalog, outfits=shop.outfits, out=out, seed=0)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_reads_strictly_with_every_product_and_image(shop: ShopFiles, imported: Path) -> None:
    for kind in SPLIT_KINDS:
        stats = dataset_stats(imported, kind)
        assert stats["ok"], stats["problems"]
        assert stats["items"] == len(shop.rows)
        ds = PolyvoreDataset(imported, kind)
        splits = {s: ds.split(s) for s in SPLITS}  # strict: raises on any inconsistency
        assert sum(len(splits[s].outfits) for s in SPLITS) == len(shop.outfit_ids)
        assert all(splits[s].fitb and splits[s].compatibility for s in SPLITS)
        # Products in no outfit at all are in the trainer's unlabeled pool.
        unused = {r["item_id"] for r in shop.rows} - {i for o in shop.outfit_ids for i in o}
        assert unused and unused <= set(ds.unlabeled_item_ids(("train",)))
    ds = PolyvoreDataset(imported)
    assert {it.category for it in ds.items.values()} == {r["category"] for r in shop.rows}
    for row in shop.rows:
        written = ds.image_path(row["item_id"]).read_bytes()
        source = (shop.catalog.parent / row["image"]).read_bytes()
        assert written[:3] == b"\xff\xd8\xff"  # always a JPEG, as the layout promises
        if row["image"].endswith(".jpg"):
            assert written == source  # JPEGs are copied unchanged, never re-encoded
        with Image.open(ds.image_path(row["item_id"])) as img:
            assert img.mode == "RGB" and img.size[0] >= 56


def test_fitb_and_negatives_use_other_products_of_the_category(imported: Path) -> None:
    ds = PolyvoreDataset(imported, "nondisjoint")
    for name in SPLITS:
        split = ds.split(name)
        outfits = {o.set_id: set(o.item_ids) for o in split.outfits}
        for q in split.fitb:
            right = q.answers[q.correct]
            assert right in outfits[q.set_id] and right not in q.question
            assert len(set(q.answers)) == 4
            assert {ds.items[a].category for a in q.answers} == {ds.items[right].category}
            assert not (set(q.answers) - {right}) & outfits[q.set_id]
        negatives = [c for c in split.compatibility if c.label == 0]
        assert negatives and all(len(set(c.item_ids)) == len(c.item_ids) for c in negatives)
        assert not {tuple(c.item_ids) for c in negatives} & {tuple(o.item_ids) for o in split.outfits}


def test_disjoint_answers_and_swaps_are_cold_start_products(imported: Path) -> None:
    meta = json.loads((imported / META_FILE).read_text())
    cold = set(meta["cold_items"])
    ds = PolyvoreDataset(imported, "disjoint")
    train_items = ds.outfit_item_ids(["train"])
    assert cold and not cold & train_items
    for name in ("valid", "test"):
        split = ds.split(name)
        assert all(set(q.answers) <= cold for q in split.fitb)
        outfit_sets = [set(o.item_ids) for o in split.outfits]
        for c in split.compatibility:
            if c.label == 0:  # every swapped-in product is cold: the rest is one of the split's outfits
                assert any(set(c.item_ids) - o <= cold for o in outfit_sets)
    assert ds.split("test").fitb


def test_same_seed_same_files_other_seed_other_splits(shop: ShopFiles, imported: Path, tmp_path: Path) -> None:
    import_shop(catalog=shop.catalog, outfits=shop.outfits, out=tmp_path / "again", seed=0)
    assert _files(tmp_path / "again") == _files(imported)
    import_shop(catalog=shop.catalog, outfits=shop.outfits, out=tmp_path / "other", seed=1)
    other = _files(tmp_path / "other")
    assert other["nondisjoint/train.json"] != _files(imported)["nondisjoint/train.json"]


def test_jsonl_catalog_and_attribute_types(tmp_path: Path) -> None:
    files = write_shop(tmp_path / "src", fmt="jsonl", seed=1)
    summary = import_shop(catalog=files.catalog, outfits=files.outfits, out=tmp_path / "ds", seed=0)
    assert summary.attributes == {"brand": "string", "colour": "string", "gender": "string",
                                  "in_stock": "boolean", "size": "number"}
    in_outfits = {i for o in files.outfit_ids for i in o}
    assert summary.items == len(files.rows) and summary.unlabeled_items == len(files.rows) - len(in_outfits)
    assert summary.images_copied + summary.images_converted == len(files.rows)
    assert summary.images_converted > 0 and summary.images_copied > 0


def test_cli_import_prints_summary_and_stats(
    shop: ShopFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    rc = main(["data", "import", "--catalog", str(shop.catalog), "--outfits", str(shop.outfits), "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["stats"]["nondisjoint"]["ok"] and report["stats"]["disjoint"]["ok"]
    assert report["outfits"] == len(shop.outfit_ids) and report["items"] == len(shop.rows)
    # Importing again over an earlier import replaces it; a foreign directory is refused.
    assert main(["data", "import", "--catalog", str(shop.catalog), "--outfits", str(shop.outfits),
                 "--out", str(out), "--seed", "1"]) == 0
    capsys.readouterr()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not an imported shop dataset"):
        import_shop(catalog=shop.catalog, outfits=shop.outfits, out=foreign)
    assert (foreign / "keep.txt").read_text() == "precious"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _break_catalog(files: ShopFiles, how: str) -> str:
    """Damage a copy of the generated files; returns the text the error must contain."""
    lines = _lines(files.catalog)  # CSV: line 1 is the header, product i is on line i + 2
    photos = files.catalog.parent
    if how == "missing_image":
        (photos / files.rows[4]["image"]).unlink()
        return "line 6: item 'P-0004': image "
    if how == "corrupt_image":
        (photos / files.rows[7]["image"]).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        return "line 9: item 'P-0007'"
    if how == "duplicate_id":
        lines.append(lines[3])
        files.catalog.write_text("".join(lines))
        return f"line {len(lines)}: duplicate item_id 'P-0002' (first on line 4)"
    if how == "unsafe_id":
        lines[2] = lines[2].replace("P-0001", "../../etc/x", 1)
        files.catalog.write_text("".join(lines))
        return "line 3: item_id '../../etc/x' cannot name a file"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing_image", "corrupt_image", "duplicate_id", "unsafe_id"])
def test_bad_catalog_names_file_and_line_and_writes_nothing(tmp_path: Path, how: str) -> None:
    files = write_shop(tmp_path / "src", items=60, outfits=MIN_OUTFITS)
    expected = _break_catalog(files, how)
    with pytest.raises(DatasetError) as err:
        import_shop(catalog=files.catalog, outfits=files.outfits, out=tmp_path / "ds")
    assert str(files.catalog) in str(err.value) and expected in str(err.value)
    assert not (tmp_path / "ds").exists() and [p.name for p in tmp_path.iterdir()] == ["src"]


def _outfit_lines(files: ShopFiles, changes: dict[int, object]) -> None:
    rows = [json.loads(line) for line in _lines(files.outfits)]
    for n, value in changes.items():
        rows[n] = value
    files.outfits.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({2: ["P-0000", "no-such-product"]}, "line 3: unknown item ids ['no-such-product']"),
        ({0: ["P-0000", "P-0004"]}, "line 1: all 2 item(s) are 'tops'; an outfit needs items of at least two"),
        ({5: ["P-0001"]}, "line 6: all 1 item(s) are 'bottoms'"),
        ({3: ["P-0000", "P-0001", "P-0000"]}, "line 4: items ['P-0000'] appear twice"),
        ({1: {"set_id": "look0", "items": ["P-0000", "P-0001"]}}, "line 2: set_id 'look0' repeats line 1"),
        ({1: {"set_id": "a b", "items": ["P-0000", "P-0001"]}}, "line 2: set_id 'a b' must be non-empty"),
    ],
)
def test_bad_outfits_name_file_and_line(tmp_path: Path, changes: dict[int, object], expected: str) -> None:
    files = write_shop(tmp_path / "src", items=60, outfits=MIN_OUTFITS)
    _outfit_lines(files, changes)
    with pytest.raises(DatasetError) as err:
        import_shop(catalog=files.catalog, outfits=files.outfits, out=tmp_path / "ds")
    assert str(files.outfits) in str(err.value) and expected in str(err.value)
    assert not (tmp_path / "ds").exists()


def test_every_problem_is_listed_at_once_and_the_cli_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_shop(tmp_path / "src", items=60, outfits=MIN_OUTFITS)
    _outfit_lines(files, {0: ["P-0000", "nope-1"], 7: ["P-0000", "nope-2"]})
    rc = main(["data", "import", "--catalog", str(files.catalog), "--outfits", str(files.outfits),
               "--out", str(tmp_path / "ds")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"error: {files.outfits}: 2 problem(s)")
    assert "line 1: unknown item ids ['nope-1']" in err and "line 8: unknown item ids ['nope-2']" in err


def test_too_few_outfits(tmp_path: Path) -> None:
    files = write_shop(tmp_path / "src", items=40, outfits=MIN_OUTFITS - 1)
    with pytest.raises(DatasetError, match=f"{MIN_OUTFITS - 1} outfits; at least {MIN_OUTFITS}"):
        import_shop(catalog=files.catalog, outfits=files.outfits, out=tmp_path / "ds")
