from __future__ import annotations

import re
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


def test_csv_extra_columns_become_typed_attributes(tmp_path: Path) -> None:
    p = tmp_path / "cat.csv"
    p.write_text(
        "item_id,image,category,in_stock,size,ean,brand,note\n"
        "a,a.jpg,tops,true,38,0123,acme,\n"
        "b,b.jpg,tops,FALSE,40.5,4006381333931,bolt,\n"
        "c,c.jpg,shoes,,,,42,\n"
    )
    a, b, c = read_catalog(p)
    assert a.attributes == {"in_stock": True, "size": 38.0, "ean": "0123", "brand": "acme"}
    assert b.attributes == {"in_stock": False, "size": 40.5, "ean": "4006381333931", "brand": "bolt"}
    assert c.attributes == {"brand": "42"}  # a column with any non-number is a string column; empty = missing
    assert hash(a) == hash(a) and a != b  # still hashable with a dict of attributes


def test_jsonl_attributes_keep_their_json_types(tmp_path: Path) -> None:
    p = tmp_path / "cat.jsonl"
    p.write_text(
        '{"item_id": "x", "image": "x.jpg", "category": "bags", "in_stock": true, "size": 3, "colour": "red"}\n'
        '{"item_id": "y", "image": "y.jpg", "category": "bags", "in_stock": null, "colour": "blue"}\n'
    )
    x, y = read_catalog(p)
    assert x.attributes == {"in_stock": True, "size": 3.0, "colour": "red"}
    assert y.attributes == {"colour": "blue"}
    out = tmp_path / "out.jsonl"
    write_catalog_jsonl(out, [x, y])
    assert read_catalog(out) == [x, y]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.jsonl", '{"item_id": "x", "image": "i", "category": "c", "size": 3}\n'
                    '{"item_id": "y", "image": "i", "category": "c", "size": "M"}\n',
         "line 2: attribute 'size' is a string here but a number on line 1"),
        ("b.jsonl", '{"item_id": "x", "image": "i", "category": "c", "tags": ["a"]}\n',
         "line 1: attribute 'tags' must be a number, boolean or string, not list"),
        ("c.csv", "item_id,image,category,Colour Name\nx,i,c,red\n", "line 1: attribute name 'Colour Name'"),
        ("d.jsonl", '{"item_id": "x", "image": "i", "category": "c", "9lives": 1}\n', "attribute name '9lives'"),
        ("e.csv", "item_id,image,category\nx,i,c,surplus\n", "line 2: more values than the header"),
        ("f.csv", "item_id,image,category,brand,brand\nx,i,c,a,b\n", "repeated column names ['brand']"),
        ("g.csv", "item_id,image,category\nx,i,c\ny,i,c\nx,j,c\n", "line 4: duplicate item_id 'x' (first on line 2)"),
    ],
)
def test_bad_attributes_name_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(DatasetError, match=re.escape(message)) as err:
        read_catalog(p)
    assert name in str(err.value)
