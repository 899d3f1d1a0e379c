from __future__ import annotations

from pathlib import Path

import pytest

from catalog import DatasetError, read_catalog, read_outfits_jsonl
from catalog.generic import write_catalog_jsonl


def test_csv_catalog_with_optional_fields(tmp_path: Path) -> None:
    p = tmp_path / "cat.csv"
    p.write_text(
        "item_id,image,category,title,price,url\n"
        "a1,img/a1.jpg,tops,Red shirt,19.5,https://shop/a1\n"
        "b2,/abs/b2.png,shoes,,,\n"
    )
    items = read_catalog(p)
    assert [i.item_id for i in items] == ["a1", "b2"]
    assert items[0].image == tmp_path / "img" / "a1.jpg" and items[0].price == 19.5
    assert items[1].image == Path("/abs/b2.png") and items[1].price is None and items[1].title == ""


def test_jsonl_roundtrip(tmp_path: Path) -> None:
    p = tmp_path / "cat.jsonl"
    p.write_text(
        '{"item_id": "x", "image": "x.jpg", "category": "bags", "price": 3}\n\n'
        '{"item_id": "y", "image": "y.jpg", "category": "hats", "url": "u"}\n'
    )
    items = read_catalog(p)
    out = tmp_path / "out.jsonl"
    write_catalog_jsonl(out, items)
    assert read_catalog(out) == items


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "item_id,image\nx,y\n", "header must contain"),
        ("b.csv", "item_id,image,category\nx,,tops\n", "line 2: missing required field"),
        ("c.csv", "item_id,image,category,price\nx,i.jpg,tops,cheap\n", "not a number"),
        ("d.jsonl", '{"item_id": "x", "image": "i", "category": "c"}\n{bad\n', "line 2: malformed JSON"),
        ("e.jsonl", '{"item_id": "x", "image": "i", "category": "c"}\n' * 2, "duplicate item_id"),
        ("f.txt", "whatever", "must be .csv or .jsonl"),
    ],
)
def test_bad_catalogs_name_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(DatasetError, match=message) as err:
        read_catalog(p)
    assert name in str(err.value)


def test_outfits_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "outfits.jsonl"
    p.write_text('["a", "b"]\n{"set_id": "s9", "items": ["b", "c"]}\n')
    outfits = read_outfits_jsonl(p, known_ids={"a", "b", "c"})
    assert outfits[0].item_ids == ("a", "b") and outfits[1].set_id == "s9"
    p.write_text('["a", "zzz"]\n')
    with pytest.raises(DatasetError, match="unknown item ids"):
        read_outfits_jsonl(p, known_ids={"a"})
    p.write_text("[]\n")
    with pytest.raises(DatasetError, match="non-empty list"):
        read_outfits_jsonl(p)
