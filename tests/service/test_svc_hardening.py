"""Regression tests of issue 12's reproduced attacks, each against the real service (uvicorn where it matters)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import image_corpus
import numpy as np
import pytest
from index_versions import kept_item, publish_half
from PIL import Image

MB = 1024 * 1024


def _png(size: tuple[int, int], color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    return image_corpus._save(image_corpus.product_photo(size, color), "PNG")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError as e:
        pytest.skip(f"cannot reset the server's peak RSS here: {e}")


@pytest.fixture(scope="module")
def server(start_server: Callable[..., Any]) -> Any:
    return start_server()


def _ids(url: str, n: int) -> list[str]:
    cats = [c["name"] for c in httpx.get(url + "/v1/categories").json()["categories"]]
    out: list[str] = []
    for c in cats:
        out += [it["id"] for it in httpx.get(url + "/v1/items", params={"category": c, "limit": 3}).json()["items"]]
    return out[:n]


# 1. Padding before resizing; bounded decodes -------------------------------------------------------------


def test_wide_uploads_cost_little_memory_and_strips_are_refused(server: Any) -> None:
    url, pid = server.url, server.proc.pid
    assert httpx.post(url + "/v1/embed", files={"image": ("w.png", _png((60, 80)), "image/png")}).status_code == 200
    strip = _png((16000, 250))  # ~12 KB; padding it first took ~1 GB
    wide = _png((8000, 400))  # the widest shape accepted (aspect 20): 8000² x 3 = 192 MB if padded first
    _reset_peak_rss(pid)
    base = _status_kb(pid, "VmRSS")
    r = httpx.post(url + "/v1/embed", files={"image": ("s.png", strip, "image/png")}, timeout=60)
    assert r.status_code == 422 and r.json()["error"]["code"] == "image_bad_dimensions", r.text
    assert "16000x250" in r.json()["error"]["message"]
    r = httpx.post(url + "/v1/embed", files={"image": ("w.png", wide, "image/png")}, timeout=60)
    assert r.status_code == 200, r.text
    rise_mb = (_status_kb(pid, "VmHWM") - base) / 1024
    assert rise_mb < 50, f"peak RSS rose by {rise_mb:.0f} MB"


def test_a_small_upload_is_not_delayed_by_large_decodes(server: Any) -> None:
    """Large decodes take a few slots in the threadpool; a small photo sent meanwhile is answered first."""
    big = [_png((4000, 4000), (10 * i, 90, 200)) for i in range(4)]  # 16 MP each, decoded in full
    small = image_corpus.jpeg_bytes((60, 80))

    async def run() -> tuple[list[float], float]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as c:
            async def post(data: bytes, name: str) -> float:
                t0 = time.perf_counter()
                r = await c.post("/v1/embed", files={"image": (name, data, "image/png")})
                assert r.status_code == 200, r.text
                return time.perf_counter() - t0

            bigs = [asyncio.ensure_future(post(b, f"b{i}.png")) for i, b in enumerate(big)]
            await asyncio.sleep(0.05)  # the large decodes are under way
            small_s = await post(small, "s.jpg")
            return list(await asyncio.gather(*bigs)), small_s

    big_s, small_s = asyncio.run(run())
    # Same run, as ratios: the small photo waits neither for a decode slot nor for the model thread.
    assert small_s < 0.5 * max(big_s), (small_s, big_s)


# 2. /images/{id} serves only files under the index's image root ----------------------------------------


def _write_catalog(root: Path, n: int) -> Path:
    """A JSONL catalog of n drawn product images (p0000.jpg, p0001.png, ...) in three categories."""
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        name = f"p{i:04d}.{'png' if i % 2 else 'jpg'}"
        image_corpus.product_photo((48 + i, 64), (20 * i, 100, 200 - 10 * i)).save(root / "images" / name)
        category = ("tops", "bottoms", "shoes")[i % 3]
        rows.append({"item_id": f"p{i:04d}", "image": f"images/{name}", "category": category})
    path = root / "catalog.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def escape_index(
    random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Path]]]:
    from index.build import build_catalog_index
    from index.embed_job import EmbedJobConfig

    base = tmp_path_factory.mktemp("escape")
    catalog = _write_catalog(base / "cat", 12)
    outside = base / "outside"
    outside.mkdir()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(outside / "x.png")
    Image.new("RGB", (40, 40), (3, 2, 1)).save(outside / "y.png")
    (outside / "secret.txt").write_text("root:x:0:0:the secret\n")
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    rows += [{"item_id": "esc-rel", "image": "../outside/x.png", "category": "tops"},
             {"item_id": "esc-abs", "image": str(outside / "y.png"), "category": "shoes"}]
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # Built from another working directory with a relative catalog path: the server must not depend on it.
    cwd = os.getcwd()
    os.chdir(base)
    try:
        build_catalog_index(checkpoint=random_checkpoint, catalog=Path("cat") / catalog.name, out=base / "index",
                            job=EmbedJobConfig(num_workers=0, progress=False))
    finally:
        os.chdir(cwd)
    # After the build, a catalog image is replaced by a symlink to a file outside the root.
    linked = base / "cat" / "images" / "p0002.jpg"
    linked.unlink()
    linked.symlink_to(outside / "secret.txt")
    yield base / "index", {"cat": base / "cat", "outside": outside}


def test_images_are_served_only_from_the_image_root(
    escape_index: tuple[Path, dict[str, Path]], random_checkpoint: Path, tmp_path: Path
) -> None:
    from conftest import launch

    index, dirs = escape_index
    srv = launch(index, random_checkpoint, tmp_path)  # cwd: the repository, not where the index was built
    try:
        ok = httpx.get(srv.url + "/images/p0001")
        assert ok.status_code == 200 and ok.content == (dirs["cat"] / "images" / "p0001.png").read_bytes()
        for item in ("esc-rel", "esc-abs", "p0002"):
            r = httpx.get(srv.url + f"/images/{item}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "no_image", (item, r.text)
            assert b"secret" not in r.content
        assert httpx.get(srv.url + "/v1/items/esc-rel").status_code == 200  # the item itself stays served
    finally:
        srv.stop()


def test_stored_image_paths_are_relative_to_the_recorded_root(escape_index: tuple[Path, dict[str, Path]]) -> None:
    from index import open_index

    index, dirs = escape_index
    idx = open_index(index)
    try:
        assert idx.manifest["image_root"] == str(dirs["cat"].resolve())
        recs = idx.get_items(["p0001", "esc-rel", "esc-abs"])
        assert recs["p0001"].image_path == "images/p0001.png"
        assert recs["esc-rel"].image_path == str(dirs["outside"].resolve() / "x.png")  # outside: absolute
        assert idx.image_path("esc-rel") is None and idx.image_path("p0001") is not None
    finally:
        idx.close()


# 6. A malformed manifest on reload is a counted 409; the old engine keeps serving ------------------------


@pytest.mark.parametrize("damage", [
    {"per_category": [1, 2]},
    {"files": {"vectors.npy": "deadbeef"}},
    {"search": "fast"},
    {"count": "many"},
    {"embed_dim": True},
])
def test_malformed_manifest_on_reload_is_409_and_counted(
    make_settings: Callable[..., Any], service_index: Path, tmp_path: Path, damage: dict[str, Any]
) -> None:
    from fastapi.testclient import TestClient

    from index.layout import MANIFEST_FILE, resolve_version_dir
    from service.app import create_app

    copy = tmp_path / "index"
    shutil.copytree(service_index, copy, symlinks=True)
    manifest_path = resolve_version_dir(copy) / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest.update(damage)
    manifest_path.write_text(json.dumps(manifest))
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as c:
        before = c.get("/readyz").json()
        r = c.post("/v1/admin/reload", headers={"X-API-Key": "s3cret"}, json={"index": str(copy)})
        assert r.status_code == 409 and r.json()["error"]["code"] == "load_failed", r.text
        assert c.get("/readyz").json() == before
        assert c.get("/v1/categories").status_code == 200
        sample = c.app.state.service.metrics.registry.get_sample_value
        assert sample("outfit_reloads_total", {"outcome": "failed"}) == 1.0


# 7. Multipart ids: the JSON limits, and errors never echo a value in full --------------------------------


def test_multipart_item_ids_have_the_json_limits(client: Any) -> None:
    photo = ("images", ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg"))
    long_id = "x" * 1_000_000
    r = client.post("/v1/compatibility", data={"item_ids": long_id}, files=[photo])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text[:300]
    assert len(r.content) < 4000  # the 1 MB id is not echoed
    json_r = client.post("/v1/compatibility", json={"item_ids": [long_id, "y"]})
    assert json_r.status_code == 422 and len(json_r.content) < 4000
    # 21 ids: over the outfit limit either way.
    r = client.post("/v1/compatibility", data={"item_ids": ",".join(f"i{n}" for n in range(21))}, files=[photo])
    assert r.status_code == 422


def test_error_messages_truncate_echoed_values(client: Any) -> None:
    unknown = ["u" * 190 + str(n) for n in range(19)] + ["known-not"]
    r = client.post("/v1/compatibility", json={"item_ids": unknown})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_items"
    assert len(r.content) < 4000 and all(len(i) < 120 for i in r.json()["error"]["item_ids"])
    r = client.post("/v1/complementary", json={"item_ids": ["a"], "k" * 100_000: 1})
    assert r.status_code == 422 and len(r.content) < 4000
    r = client.post("/v1/complementary", data={"c" * 3000: "1"},
                    files={"image": ("a.jpg", image_corpus.jpeg_bytes(), "image/jpeg")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_fields" and len(r.content) < 4000
    r = client.post("/v1/complementary", json={"item_ids": ["a"], "categories": ["z" * 100]})
    assert r.status_code in (404, 422) and len(r.content) < 4000


def test_multipart_forms_publish_the_json_limits(client: Any) -> None:
    spec = client.get("/openapi.json").json()

    def form(path: str) -> dict[str, Any]:
        return spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]

    def json_body(path: str) -> dict[str, Any]:
        return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    def limits(prop: dict[str, Any]) -> dict[str, Any]:
        """The constraints of a field, without annotations, null and the form's own additions (a blank text
        field means "not set"; list values carry no comma): what JSON and multipart must share."""
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null" and o.get("pattern") != r"^\s*$"]
        assert len(options) == 1, prop
        out = {k: v for k, v in options[0].items() if k not in ("title", "description", "default")}
        if "items" in out:
            out["items"] = {k: v for k, v in out["items"].items() if k != "pattern"}
        return out

    for name in ("k", "per_category", "categories", "exclude"):
        assert limits(form("/v1/complementary")["properties"][name]) == limits(
            json_body("/v1/complementary")["properties"][name])
    ids = form("/v1/compatibility")["properties"]["item_ids"]
    assert ids["maxItems"] == 20 and ids["items"]["maxLength"] == 200


# 8. Duplicate ids in an outfit are refused -----------------------------------------------------------------


def test_duplicate_items_in_an_outfit_are_refused(client: Any) -> None:
    engine = client.app.state.service.engine
    a, b = [h.item_id for h in engine.index.search(np.eye(1, engine.index.dim, dtype=np.float32), k=2)[0]]
    for body in ({"item_ids": [a, a]}, {"item_ids": [a, b, a]}):
        r = client.post("/v1/compatibility", json=body)
        assert r.status_code == 422 and "repeated" in r.json()["error"]["message"], r.text
    r = client.post("/v1/fill-in-the-blank", json={"outfit": [a, a], "candidates": [b]})
    assert r.status_code == 422 and "repeated" in r.json()["error"]["message"]
    photo = image_corpus.jpeg_bytes()
    r = client.post("/v1/compatibility", data={"item_ids": f"{a},{a}"},
                    files=[("images", ("p.jpg", photo, "image/jpeg"))])
    assert r.status_code == 422 and "repeated" in r.json()["error"]["message"]
    assert client.post("/v1/compatibility", json={"item_ids": [a, b]}).status_code == 200
    # The complementary query is a set: repeats there are de-duplicated (documented), not refused.
    r = client.post("/v1/complementary", json={"item_ids": [a, a]})
    assert r.status_code == 200 and r.json()["query"]["item_ids"] == [a]


# 9. The admin key is checked before the body is read --------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b'{"index": 5}', b'{"unknown": 1}', b"[]"])
def test_admin_reload_checks_the_key_before_the_body(client: Any, body: bytes) -> None:
    h = {"content-type": "application/json"}
    r = client.post("/v1/admin/reload", content=body, headers=h)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
    r = client.post("/v1/admin/reload", content=body, headers={**h, "X-API-Key": "wrong"})
    assert r.status_code == 403
    r = client.post("/v1/admin/reload", content=body, headers={**h, "X-API-Key": "s3cret"})
    assert r.status_code in (400, 422)  # with the key, the body's own error


# 10. uvicorn's connection limit and keep-alive timeout come from settings ----------------------------------


def test_serve_applies_connection_limit_and_keep_alive(start_server: Callable[..., Any]) -> None:
    srv = start_server({"OUTFIT_MAX_CONNECTIONS": "3", "OUTFIT_KEEP_ALIVE_S": "1"})
    idle = socket.create_connection(("127.0.0.1", srv.port))
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    idle.settimeout(10)
    answer = b""
    while b'{"status":"ok"}' not in answer:  # headers and body may come in separate segments
        answer += idle.recv(4096)
    assert b"200 OK" in answer
    t0 = time.monotonic()
    assert idle.recv(4096) == b""  # the idle keep-alive connection is closed by the server
    assert time.monotonic() - t0 < 4  # after ~1 s (uvicorn's default is 5 s)
    idle.close()
    holders = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(3)]
    try:
        time.sleep(0.3)
        r = httpx.get(srv.url + "/healthz")
        assert r.status_code == 503  # over the limit: refused at once rather than queued
    finally:
        for s in holders:
            s.close()
    time.sleep(0.5)
    assert httpx.get(srv.url + "/healthz").status_code == 200


# Every worker serves the newest index ---------------------------------------------------------------------


def _workers(url: str, want: int, timeout_s: float, version: str | None = None) -> dict[int, str]:
    """worker pid -> index version from /readyz, until `want` workers answered (all on `version` if given).

    Requests go 8 at a time on fresh connections: one idle worker would otherwise accept nearly all of them.
    """

    async def burst(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        rs = await asyncio.gather(*(c.get("/readyz", headers={"Connection": "close"}) for _ in range(8)))
        return [r.json() for r in rs]

    async def run() -> dict[int, str]:
        seen: dict[int, str] = {}
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            while time.monotonic() < deadline:
                for body in await burst(c):
                    seen[int(body["worker"])] = body["index_version"]
                if len(seen) >= want and (version is None or all(v == version for v in seen.values())):
                    break
                await asyncio.sleep(0.1)
        return seen

    return asyncio.run(run())


def test_every_worker_follows_a_newly_published_version(
    start_server: Callable[..., Any], service_index: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    import threading

    index = tmp_path / "index"
    shutil.copytree(service_index, index, symlinks=True)
    srv = start_server({"OUTFIT_INDEX_WATCH_S": "1"},
                       ["--index", str(index), "--checkpoint", str(random_checkpoint), "--workers", "2"])
    before = _workers(srv.url, 2, 300)  # the second worker may still be importing torch on a busy machine
    assert len(before) == 2 and len(set(before.values())) == 1, before
    ids = [kept_item(index)]  # still in the new version: every request must succeed
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            n = 0
            while not stop.is_set():
                n += 1
                statuses.append(c.post("/v1/complementary", json={"item_ids": ids, "k": 5}).status_code)
                photo = image_corpus.jpeg_bytes((40 + n % 20, 60))
                statuses.append(c.post("/v1/embed", files={"image": ("u.jpg", photo, "image/jpeg")}).status_code)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        items = len(publish_half(index))
        from index.layout import resolve_version_dir

        new_version = json.loads((resolve_version_dir(index) / "manifest.json").read_text())["version"]
        # Within the interval (1 s) plus the time a worker takes to load the new version beside the old one.
        after = _workers(srv.url, 2, 180, version=new_version)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(after) == set(before) and set(after.values()) == {new_version}, after
    assert httpx.get(srv.url + "/readyz").json()["items"] == items
    assert statuses and set(statuses) == {200}, sorted(set(statuses))


def test_an_admin_reload_reaches_every_worker(
    start_server: Callable[..., Any], service_index: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """POST /v1/admin/reload lands on one worker; the other loads the same through the shared reload signal.

    The reload names another index root (a copy with a newer version): `current` of the served root never
    moves, so only the signal can bring the second worker along.
    """
    import threading

    index, other = tmp_path / "index", tmp_path / "other"
    shutil.copytree(service_index, index, symlinks=True)
    shutil.copytree(service_index, other, symlinks=True)
    items = len(publish_half(other))
    from index.layout import resolve_version_dir

    new_version = json.loads((resolve_version_dir(other) / "manifest.json").read_text())["version"]
    srv = start_server({"OUTFIT_INDEX_WATCH_S": "1"},
                       ["--index", str(index), "--checkpoint", str(random_checkpoint), "--workers", "2"])
    before = _workers(srv.url, 2, 300)
    assert len(before) == 2 and set(before.values()) != {new_version}, before
    ids = [kept_item(other)]  # in both roots: every request must succeed
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            while not stop.is_set():
                statuses.append(c.post("/v1/complementary", json={"item_ids": ids, "k": 5}).status_code)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        r = httpx.post(srv.url + "/v1/admin/reload", json={"index": str(other)}, headers={"X-API-Key": "s3cret"},
                       timeout=120)
        assert r.status_code == 200 and r.json()["current"]["index_version"] == new_version, r.text
        t0 = time.monotonic()
        # Within the interval (1 s) plus the time the other worker takes to load the index beside its old one.
        after = _workers(srv.url, 2, 180, version=new_version)
        followed_s = time.monotonic() - t0
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(after) == set(before) and set(after.values()) == {new_version}, (after, followed_s)
    assert all(httpx.get(srv.url + "/readyz").json()["items"] == items for _ in range(4))
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
