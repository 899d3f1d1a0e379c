"""Business filters through the real app: a shop CSV with typed attributes (conftest `shop_index`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shop_catalog import ShopFiles

from index import open_index


@pytest.fixture(scope="module")
def shop_client(shop_index: Path, random_checkpoint: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(index=shop_index, checkpoint=random_checkpoint, batch_max_wait_ms=2.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def passes(row: dict[str, Any], flt: dict[str, Any]) -> bool:
    """Reference: what a filter means, for one catalog row."""
    if "price_min" in flt and row["price"] < flt["price_min"]:
        return False
    if "price_max" in flt and row["price"] > flt["price_max"]:
        return False
    for name, want in flt.items():
        if name not in ("price_min", "price_max") and row[name] not in (want if isinstance(want, list) else [want]):
            return False
    return True


def test_filters_endpoint_lists_the_catalogs_attributes(shop_client: Any, shop: ShopFiles) -> None:
    body = shop_client.get("/v1/filters").json()
    prices = [r["price"] for r in shop.rows]
    assert body["price"] == {"min": min(prices), "max": max(prices)}
    attrs = body["attributes"]
    assert {n: a["type"] for n, a in attrs.items()} == {
        "brand": "string", "colour": "string", "gender": "string", "in_stock": "boolean", "size": "number"}
    assert attrs["in_stock"]["true"] == sum(r["in_stock"] for r in shop.rows)
    assert attrs["brand"]["values"] == {b: sum(r["brand"] == b for r in shop.rows)
                                        for b in sorted({r["brand"] for r in shop.rows})}
    assert attrs["size"]["min"] == min(r["size"] for r in shop.rows)
    item = shop_client.get("/v1/items/P-0003").json()
    assert item["attributes"] == {k: shop.rows[3][k] for k in ("brand", "colour", "gender", "in_stock", "size")}


def test_complementary_returns_exactly_the_best_allowed_items(
    shop_client: Any, shop: ShopFiles, shop_index: Path
) -> None:
    flt = {"price_max": 120.0, "in_stock": True, "brand": ["acme", "corto"]}
    body = {"item_ids": ["P-0000"], "per_category": 4, "k": 12, "filters": flt, "diversity": 0}
    r = shop_client.post("/v1/complementary", json=body)
    assert r.status_code == 200, r.text
    groups = {g["category"]: g["items"] for g in r.json()["groups"]}
    rows = {row["item_id"]: row for row in shop.rows}
    idx = open_index(shop_index)
    q = idx.vectors(["P-0000"])[0]
    got_total = 0
    for cat in ("bottoms", "shoes", "bags"):
        allowed = [i for i, row in rows.items() if row["category"] == cat and passes(row, flt)]
        scores = idx.vectors(allowed) @ q
        want = [allowed[j] for j in np.lexsort((np.array(allowed), -scores))[:4]]
        got = [it["id"] for it in groups.get(cat, [])]
        assert got == want[: len(got)] and got_total + len(got) <= 12
        got_total += len(got)
        for it in groups.get(cat, []):
            assert it["attributes"]["in_stock"] is True and it["price"] <= 120.0
    assert got_total == min(12, sum(min(4, sum(1 for i, row in rows.items() if row["category"] == c
                                                and passes(row, flt))) for c in ("bottoms", "shoes", "bags")))


def test_filters_are_part_of_the_result_cache_key(shop_client: Any) -> None:
    plain = shop_client.post("/v1/complementary", json={"item_ids": ["P-0001"], "per_category": 5}).json()
    cheap = shop_client.post("/v1/complementary", json={"item_ids": ["P-0001"], "per_category": 5,
                                                        "filters": {"price_max": 40}}).json()
    assert plain["groups"] != cheap["groups"]  # the filtered request was not answered from the plain one's entry
    assert all(it["price"] <= 40 for g in cheap["groups"] for it in g["items"])
    a = shop_client.post("/v1/complementary", json={"item_ids": ["P-0001"], "filters": {
        "gender": "women", "brand": ["bolt", "acme"], "price_max": 150}})
    b = shop_client.post("/v1/complementary", json={"item_ids": ["P-0001"], "filters": {
        "price_max": 150, "brand": ["acme", "bolt", "acme"], "gender": "women"}})
    assert a.status_code == b.status_code == 200 and a.content == b.content


def test_unknown_attribute_is_a_422_naming_the_known_ones(shop_client: Any) -> None:
    r = shop_client.post("/v1/complementary", json={"item_ids": ["P-0000"], "filters": {"material": "wool"}})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "unknown_filter" and err["unknown"] == ["material"]
    assert err["known"] == ["price_min", "price_max", "brand", "colour", "gender", "in_stock", "size"]
    assert "material" in err["message"] and "in_stock" in err["message"]
    r = shop_client.post("/v1/fill-in-the-blank", json={"outfit": ["P-0000"], "candidates": ["P-0001"],
                                                        "filters": {"material": "wool"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_filter"


@pytest.mark.parametrize("flt, code", [
    ({"in_stock": "yes"}, "invalid_filter"),  # a string for a boolean attribute
    ({"size": True}, "invalid_filter"),
    ({"price_min": 90, "price_max": 10}, "invalid_filter"),
    ({"brand": []}, None),  # schema: a list needs at least one value
    ({"brand": {"in": ["acme"]}}, None),
    ({"price_max": "cheap"}, None),
])
def test_malformed_filters_are_422s(shop_client: Any, flt: dict[str, Any], code: str | None) -> None:
    r = shop_client.post("/v1/complementary", json={"item_ids": ["P-0000"], "filters": flt})
    assert r.status_code == 422, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code


def test_upload_with_filters(shop_client: Any, shop: ShopFiles) -> None:
    photo = (shop.catalog.parent / shop.rows[0]["image"]).read_bytes()
    files = {"image": ("p.jpg", photo, "image/jpeg")}
    r = shop_client.post("/v1/complementary", files=files,
                         data={"category": "tops", "filters": json.dumps({"gender": "men", "price_min": 50})})
    assert r.status_code == 200, r.text
    items = [it for g in r.json()["groups"] for it in g["items"]]
    assert items and all(it["attributes"]["gender"] == "men" and it["price"] >= 50 for it in items)
    bad = shop_client.post("/v1/complementary", files=files, data={"filters": "{not json"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "filters"
    unknown = shop_client.post("/v1/complementary", files=files, data={"filters": '{"fabric": "silk"}'})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_filter"


def test_fill_in_the_blank_leaves_out_candidates_the_filters_reject(shop_client: Any, shop: ShopFiles) -> None:
    shoes = [r for r in shop.rows if r["category"] == "shoes"][:8]
    flt = {"in_stock": True, "price_max": 150}
    cands = [r["item_id"] for r in shoes]
    r = shop_client.post("/v1/fill-in-the-blank", json={"outfit": ["P-0000", "P-0001"], "candidates": cands,
                                                        "filters": flt})
    assert r.status_code == 200, r.text
    body = r.json()
    keep = [r["item_id"] for r in shoes if passes(r, flt)]
    assert sorted(c["id"] for c in body["ranked"]) == sorted(keep)
    assert body["filtered_out"] == [c for c in cands if c not in keep]
    assert [c["rank"] for c in body["ranked"]] == list(range(1, len(keep) + 1))
    unfiltered = shop_client.post("/v1/fill-in-the-blank", json={"outfit": ["P-0000", "P-0001"],
                                                                 "candidates": cands}).json()
    assert [c["id"] for c in unfiltered["ranked"] if c["id"] in keep] == [c["id"] for c in body["ranked"]]
    # Every candidate rejected: an empty ranking, not an error; unknown candidates are still a 404.
    none = shop_client.post("/v1/fill-in-the-blank", json={"outfit": ["P-0000"], "candidates": cands,
                                                           "filters": {"price_max": 0}}).json()
    assert none["ranked"] == [] and none["filtered_out"] == cands
    missing = shop_client.post("/v1/fill-in-the-blank", json={"outfit": ["P-0000"], "candidates": ["nope"],
                                                              "filters": flt})
    assert missing.status_code == 404


def test_complete_the_look_adds_only_allowed_items(shop_client: Any, shop: ShopFiles) -> None:
    """Issue 14: outfit generation takes the same filters; they restrict the added items, not the seeds."""
    rows = {row["item_id"]: row for row in shop.rows}
    flt = {"price_max": 150.0, "in_stock": True}
    seed = next(i for i, row in rows.items() if not passes(row, flt))  # a seed the filters would reject
    targets = sorted({row["category"] for row in shop.rows} - {rows[seed]["category"]})[:2]
    body = {"item_ids": [seed], "categories": targets, "n_outfits": 3, "filters": flt}
    r = shop_client.post("/v1/outfits/complete", json=body)
    assert r.status_code == 200, r.text
    outfits = r.json()["outfits"]
    assert outfits and all(o["items"][0]["ref"] == seed for o in outfits)
    added = [e["ref"] for o in outfits for e in o["items"] if e["role"] == "added"]
    assert added and all(passes(rows[i], flt) for i in added)
    unfiltered = shop_client.post("/v1/outfits/complete", json={**body, "filters": None}).json()["outfits"]
    assert outfits[0]["score"] <= unfiltered[0]["score"] + 1e-9  # a restricted search cannot score higher
    bad = shop_client.post("/v1/outfits/complete", json={**body, "filters": {"no_such": 1}})
    assert bad.status_code == 422 and "no_such" in bad.text
