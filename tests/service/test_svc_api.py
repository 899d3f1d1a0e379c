"""The /v1 API on the real app in-process (real model, real FAISS index, local cache)."""

from __future__ import annotations

import itertools
from typing import Any

import image_corpus
import numpy as np
import pytest

from catalog.polyvore import PolyvoreDataset


@pytest.fixture(scope="module")
def catalog(synth_root: Any) -> PolyvoreDataset:
    return PolyvoreDataset(synth_root, "nondisjoint")


def _ids_by_category(ds: PolyvoreDataset) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in sorted(ds.items):
        out.setdefault(ds.items[i].category, []).append(i)
    return out


def test_health_ready_and_categories(client: Any, catalog: PolyvoreDataset) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["items"] == len(catalog.items) and ready["calibrated"] is False
    cats = {c["name"]: c["count"] for c in client.get("/v1/categories").json()["categories"]}
    assert cats == {c: len(v) for c, v in _ids_by_category(catalog).items()}


def test_item_and_image(client: Any, catalog: PolyvoreDataset) -> None:
    item_id = sorted(catalog.items)[0]
    item = client.get(f"/v1/items/{item_id}").json()
    assert item["id"] == item_id and item["category"] == catalog.items[item_id].category
    img = client.get(item["image_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.content == catalog.image_path(item_id).read_bytes()


@pytest.mark.parametrize("path", ["/images/..%2F..%2Fetc%2Fpasswd", "/images/%2Fetc%2Fpasswd", "/images/nope",
                                  "/images/../../etc/passwd", "/v1/items/nope"])
def test_no_path_traversal_and_unknown_ids_are_404(client: Any, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "root:" not in r.text


def test_complementary_by_ids_returns_other_categories_grouped(client: Any, catalog: PolyvoreDataset) -> None:
    by_cat = _ids_by_category(catalog)
    query = [by_cat["tops"][0], by_cat["shoes"][0]]
    r = client.post("/v1/complementary", json={"item_ids": query, "k": 12, "per_category": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["categories"] == ["tops", "shoes"] and body["query"]["category_inferred"] is False
    items = [it for g in body["groups"] for it in g["items"]]
    assert 0 < len(items) <= 12
    assert not {it["id"] for it in items} & set(query)
    for g in body["groups"]:
        assert g["category"] not in ("tops", "shoes") and 1 <= len(g["items"]) <= 3
        assert all(it["category"] == g["category"] and it["image_url"] for it in g["items"])
    scores = [it["score"] for it in items]
    assert max(scores) == body["groups"][0]["items"][0]["score"]


def test_complementary_scores_match_exact_search(client: Any, catalog: PolyvoreDataset) -> None:
    """Within one category the service returns the exact nearest neighbours of the mean query vector."""
    from service.scoring import outfit_query_vector

    engine = client.app.state.service.engine
    by_cat = _ids_by_category(catalog)
    query = [by_cat["bottoms"][1]]
    r = client.post("/v1/complementary", json={"item_ids": query, "categories": ["bags"], "per_category": 4,
                                               "diversity": 0,
                                               "k": 4}).json()
    got = [(it["id"], it["score"]) for it in r["groups"][0]["items"]]
    q = outfit_query_vector(engine.index.vectors(query))
    bags = by_cat["bags"]
    cos = engine.index.vectors(bags) @ q
    expected = [bags[j] for j in np.argsort(-cos)[:4]]
    assert [g[0] for g in got] == expected
    np.testing.assert_allclose([g[1] for g in got], np.sort(cos)[::-1][:4], atol=1e-5)


def test_complementary_honours_categories_and_exclude(client: Any, catalog: PolyvoreDataset) -> None:
    by_cat = _ids_by_category(catalog)
    query = [by_cat["tops"][2]]
    first = client.post("/v1/complementary", json={"item_ids": query, "categories": ["shoes"], "k": 3}).json()
    top = first["groups"][0]["items"][0]["id"]
    again = client.post("/v1/complementary",
                        json={"item_ids": query, "categories": ["shoes"], "k": 3, "exclude": [top]}).json()
    assert [g["category"] for g in again["groups"]] == ["shoes"]
    assert top not in {it["id"] for it in again["groups"][0]["items"]}


def test_complementary_with_upload_infers_its_category(client: Any) -> None:
    photo = image_corpus.jpeg_bytes((64, 64))
    r = client.post("/v1/complementary", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"k": "5"})
    assert r.status_code == 200, r.text
    q = r.json()["query"]
    assert q["kind"] == "image" and q["category_inferred"] is True and len(q["inferred_from"]) == 10
    cats = {g["category"] for g in r.json()["groups"]}
    assert q["categories"][0] not in cats and cats


def test_complementary_upload_with_category_and_options(client: Any) -> None:
    photo = image_corpus.jpeg_bytes((50, 70))
    r = client.post("/v1/complementary", files={"image": ("p.png", photo, "image/jpeg")},
                    data={"category": "tops", "categories": "shoes,bags", "per_category": "2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["category_inferred"] is False and body["query"]["categories"] == ["tops"]
    assert {g["category"] for g in body["groups"]} <= {"shoes", "bags"}
    assert all(len(g["items"]) <= 2 for g in body["groups"])


def test_compatibility_by_ids(client: Any, catalog: PolyvoreDataset) -> None:
    by_cat = _ids_by_category(catalog)
    outfit = [by_cat["tops"][0], by_cat["bottoms"][0], by_cat["shoes"][0], by_cat["bags"][0]]
    r = client.post("/v1/compatibility", json={"item_ids": outfit})
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0.0 <= body["score"] <= 1.0 and body["calibrated"] is False
    d = np.array(body["pairwise"])
    assert d.shape == (4, 4) and np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert body["mean_distance"] == pytest.approx(d[np.triu_indices(4, 1)].mean(), abs=1e-5)
    engine = client.app.state.service.engine
    emb = engine.index.vectors(outfit)
    naive = [np.mean([np.linalg.norm(a - b) for a, b in itertools.combinations(np.delete(emb, i, 0), 2)])
             for i in range(4)]
    assert body["weakest"]["ref"] == outfit[int(np.argmin(naive))]


def test_compatibility_mixes_ids_and_uploads(client: Any, catalog: PolyvoreDataset) -> None:
    ids = sorted(catalog.items)[:2]
    files = [("images", ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg")),
             ("images", ("b.png", image_corpus.corpus()["palette_png"][0], "image/png"))]
    r = client.post("/v1/compatibility", files=files, data={"item_ids": ids})
    assert r.status_code == 200, r.text
    refs = [m["ref"] for m in r.json()["items"]]
    assert refs == [*ids, "upload:0", "upload:1"] and len(r.json()["pairwise"]) == 4


def test_fill_in_the_blank_ranks_candidates(client: Any, catalog: PolyvoreDataset) -> None:
    ids = sorted(catalog.items)
    r = client.post("/v1/fill-in-the-blank", json={"outfit": ids[:3], "candidates": ids[3:7]})
    assert r.status_code == 200, r.text
    ranked = r.json()["ranked"]
    assert sorted(c["id"] for c in ranked) == sorted(ids[3:7])
    assert [c["rank"] for c in ranked] == [1, 2, 3, 4]
    assert [c["score"] for c in ranked] == sorted((c["score"] for c in ranked), reverse=True)


def test_embed_is_normalised_and_cached_by_content(client: Any) -> None:
    photo = image_corpus.jpeg_bytes((33, 47))
    first = client.post("/v1/embed", files={"image": ("x.jpg", photo, "image/jpeg")}).json()
    second = client.post("/v1/embed", files={"image": ("y.jpg", photo, "application/octet-stream")}).json()
    assert first["cached"] is False and second["cached"] is True
    assert first["embedding"] == second["embedding"] and first["dim"] == 32
    assert np.linalg.norm(first["embedding"]) == pytest.approx(1.0, abs=1e-5)


def test_exif_rotated_upload_embeds_like_the_upright_photo(client: Any) -> None:
    upright = image_corpus._save(image_corpus.product_photo((60, 80)), "JPEG", quality=95)
    rotated = image_corpus.exif_rotated_jpeg()
    a = np.array(client.post("/v1/embed", files={"image": ("a.jpg", upright, "image/jpeg")}).json()["embedding"])
    b = np.array(client.post("/v1/embed", files={"image": ("b.jpg", rotated, "image/jpeg")}).json()["embedding"])
    sideways = image_corpus._save(image_corpus.product_photo((60, 80)).transpose(2), "JPEG", quality=95)
    c = np.array(client.post("/v1/embed", files={"image": ("c.jpg", sideways, "image/jpeg")}).json()["embedding"])
    assert np.linalg.norm(a - b) < np.linalg.norm(a - c)


def test_results_are_cached_per_model_and_index(client: Any, catalog: PolyvoreDataset) -> None:
    ids = sorted(catalog.items)[10:13]
    metrics = client.app.state.service.metrics.registry
    before = metrics.get_sample_value("outfit_cache_lookups_total", {"kind": "result", "result": "hit"}) or 0.0
    a = client.post("/v1/compatibility", json={"item_ids": ids}).json()
    b = client.post("/v1/compatibility", json={"item_ids": ids}).json()
    assert a == b
    after = metrics.get_sample_value("outfit_cache_lookups_total", {"kind": "result", "result": "hit"})
    assert after == before + 1


def test_metrics_expose_latency_cache_and_batches(client: Any) -> None:
    client.post("/v1/embed", files={"image": ("m.jpg", image_corpus.jpeg_bytes((21, 21)), "image/jpeg")})
    text = client.get("/metrics").text
    assert 'outfit_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/embed"' in text
    assert "outfit_cache_hit_ratio" in text and "outfit_embed_batch_size_count" in text
    assert 'route="/images/{item_id}"' in text or 'route="/v1/items/{item_id}"' in text


def test_openapi_documents_both_body_types(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/v1/complementary"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    assert {"/v1/compatibility", "/v1/fill-in-the-blank", "/v1/embed", "/v1/items/{item_id}", "/v1/categories",
            "/images/{item_id}", "/healthz", "/readyz", "/metrics", "/v1/admin/reload"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_web_page_is_served(client: Any) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/v1/complementary" in client.get("/static/app.js").text


def test_browse_a_category_is_seeded_and_checked(client: Any, catalog: PolyvoreDataset) -> None:
    a = client.get("/v1/items", params={"category": "shoes", "limit": 7, "seed": 3}).json()
    b = client.get("/v1/items", params={"category": "shoes", "limit": 7, "seed": 3}).json()
    assert a == b and len(a["items"]) == 7 and {it["category"] for it in a["items"]} == {"shoes"}
    assert len({it["id"] for it in a["items"]}) == 7
    assert client.get("/v1/items", params={"category": "spacesuits"}).status_code == 422
    assert client.get("/v1/items", params={"category": "shoes", "limit": 0}).status_code == 422
    assert client.get("/v1/items").status_code == 422
