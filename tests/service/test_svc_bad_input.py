"""Bad input gets a specific 4xx with a useful message, never a 5xx; the service keeps answering after it."""

from __future__ import annotations

from typing import Any

import image_corpus
import numpy as np
import pytest

CORPUS = image_corpus.corpus()
# ImageDecodeError code -> HTTP status, as documented in docs/SERVICE.md.
STATUS = {"empty": 422, "not_an_image": 415, "corrupt": 422, "too_many_pixels": 422}


def _ids(client: Any, n: int) -> list[str]:
    """n known item ids spread over the categories (a few per category, from the real index)."""
    engine = client.app.state.service.engine
    probe = np.zeros((1, engine.index.dim), dtype=np.float32)
    probe[0, 0] = 1.0
    out: list[str] = []
    for c in sorted(engine.index.categories()):
        out.extend(h.item_id for h in engine.index.search(probe, k=3, category=c)[0])
    return out[:n]


@pytest.mark.parametrize("endpoint", ["/v1/embed", "/v1/complementary", "/v1/compatibility"])
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_image_corpus(client: Any, endpoint: str, name: str) -> None:
    data, code = CORPUS[name]
    if endpoint == "/v1/compatibility":
        files: Any = [("images", ("a.bin", data, "image/png")),
                      ("images", ("b.jpg", image_corpus.jpeg_bytes(), "image/jpeg"))]
    else:
        files = {"image": ("upload.bin", data, "image/jpeg")}
    r = client.post(endpoint, files=files)
    if code is None:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == STATUS[code], r.text
        err = r.json()["error"]
        assert err["code"] == f"image_{code}" and err["message"]
    assert client.get("/healthz").status_code == 200


def test_upload_over_the_size_limit_is_413(make_settings: Any) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app

    big = image_corpus.jpeg_bytes((900, 900))
    with TestClient(create_app(make_settings(max_upload_bytes=len(big) - 1)), raise_server_exceptions=False) as c:
        r = c.post("/v1/embed", files={"image": ("big.jpg", big, "image/jpeg")})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    with TestClient(create_app(make_settings(max_request_bytes=10_000)), raise_server_exceptions=False) as c:
        r = c.post("/v1/embed", files={"image": ("big.jpg", big, "image/jpeg")})
        assert r.status_code == 413 and "limit is 10000" in r.json()["error"]["message"]

        def chunks() -> Any:  # no Content-Length: the limit applies while streaming
            for _ in range(20):
                yield b"x" * 1000

        r = c.post("/v1/compatibility", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


@pytest.mark.parametrize(
    ("ctype", "status"),
    [("text/plain", 415), ("application/xml", 415), ("application/x-www-form-urlencoded", 415)],
)
def test_wrong_content_type(client: Any, ctype: str, status: int) -> None:
    r = client.post("/v1/complementary", content=b"item_ids=1", headers={"content-type": ctype})
    assert r.status_code == status and r.json()["error"]["code"] == "unsupported_media_type"
    r = client.post("/v1/embed", json={"image": "x"})
    assert r.status_code == 415


def test_upload_declared_as_text_is_415(client: Any) -> None:
    r = client.post("/v1/embed", files={"image": ("a.txt", image_corpus.jpeg_bytes(), "text/plain")})
    assert r.status_code == 415 and "not an image" in r.json()["error"]["message"]


def test_image_field_sent_as_text(client: Any) -> None:
    r = client.post("/v1/embed", data={"image": "hello"}, files={"other": ("x", b"1", "image/png")})
    assert r.status_code == 422


def test_unknown_ids_are_404_naming_them(client: Any) -> None:
    known = _ids(client, 1)
    for path, body in [
        ("/v1/complementary", {"item_ids": ["nope-1", known[0], "nope-2"]}),
        ("/v1/compatibility", {"item_ids": [known[0], "nope-1", "nope-2"]}),
        ("/v1/fill-in-the-blank", {"outfit": [known[0]], "candidates": ["nope-1", "nope-2"]}),
    ]:
        r = client.post(path, json=body)
        assert r.status_code == 404, (path, r.text)
        err = r.json()["error"]
        assert err["code"] == "unknown_items" and err["item_ids"] == ["nope-1", "nope-2"]
        assert "nope-1" in err["message"] and "nope-2" in err["message"]


@pytest.mark.parametrize("k", [0, -1, 101, 10**9, "many", 1.5, None])
def test_k_out_of_range(client: Any, k: Any) -> None:
    ids = _ids(client, 1)
    r = client.post("/v1/complementary", json={"item_ids": ids, "k": k})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert "k" in r.json()["error"]["message"]


def test_k_out_of_range_in_multipart(client: Any) -> None:
    r = client.post("/v1/complementary", files={"image": ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg")},
                    data={"k": "0"})
    assert r.status_code == 422


@pytest.mark.parametrize("n", [0, 1, 21, 40])
def test_outfit_size_limits(client: Any, n: int) -> None:
    ids = (_ids(client, 30) * 2)[:n]
    r = client.post("/v1/compatibility", json={"item_ids": ids})
    assert r.status_code == 422, r.text
    files = [("images", (f"{i}.jpg", image_corpus.jpeg_bytes(), "image/jpeg")) for i in range(n)]
    r = client.post("/v1/compatibility", files=files or {"x": ("x", b"", "image/png")})
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("body", [b"{", b"{\"item_ids\": [", b"null", b"[]", b"\xff\xfe", b"", b"{\"item_ids\": 5}"])
@pytest.mark.parametrize("path", ["/v1/complementary", "/v1/compatibility", "/v1/fill-in-the-blank"])
def test_malformed_json(client: Any, path: str, body: bytes) -> None:
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]["code"] in ("malformed_json", "invalid_request")


def test_unknown_fields_and_categories(client: Any) -> None:
    ids = _ids(client, 1)
    r = client.post("/v1/complementary", json={"item_ids": ids, "kk": 3})
    assert r.status_code == 422 and "kk" in r.text
    r = client.post("/v1/complementary", json={"item_ids": ids, "categories": ["spacesuits"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_category"
    r = client.post("/v1/complementary", files={"image": ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg")},
                    data={"category": "spacesuits"})
    assert r.status_code == 422 and "spacesuits" in r.text
    r = client.post("/v1/complementary", files={"image": ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg")},
                    data={"colour": "red"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_fields"


def test_only_the_query_category_requested(client: Any) -> None:
    ids = _ids(client, 1)
    cat = client.get(f"/v1/items/{ids[0]}").json()["category"]
    r = client.post("/v1/complementary", json={"item_ids": ids, "categories": [cat]})
    assert r.status_code == 422 and "no target category" in r.json()["error"]["message"]


def test_fitb_candidate_already_in_outfit(client: Any) -> None:
    ids = _ids(client, 3)
    r = client.post("/v1/fill-in-the-blank", json={"outfit": ids[:2], "candidates": [ids[1], ids[2]]})
    assert r.status_code == 422 and ids[1] in r.text


def test_missing_image_and_two_images(client: Any) -> None:
    r = client.post("/v1/embed", files={"picture": ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg")})
    assert r.status_code == 422
    two = [("image", ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg"))] * 2
    assert client.post("/v1/complementary", files=two).status_code in (400, 422)


def test_method_not_allowed_and_unknown_route(client: Any) -> None:
    assert client.get("/v1/complementary").status_code == 405
    assert client.get("/v2/anything").status_code == 404
