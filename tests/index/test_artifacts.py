"""Manifest verification, compatibility rules and atomic publishing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from index_helpers import Publish

from index import IndexArtifactError, open_index
from index.layout import list_versions
from index.writer import IndexPolicy


def test_manifest_describes_the_build(publish_synthetic: Publish) -> None:
    root, _, _ = publish_synthetic(120, 8)
    m = open_index(root).manifest
    assert m["model_version"] == "abcdef0123456789" and m["backend"] == "torch"
    assert m["metric"] == "inner_product" and m["embed_dim"] == 8 and m["factory"] == "Flat"
    assert m["count"] == 120 and sum(m["per_category"].values()) == 120
    assert {"faiss", "numpy"} <= set(m["libraries"])
    assert {"items.sqlite", "vectors.npy", "global.faiss"} <= set(m["files"])
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())


def test_mismatched_model_is_refused(publish_synthetic: Publish) -> None:
    root, _, _ = publish_synthetic(50, 8)
    open_index(root, expected_model_version="abcdef0123456789")
    with pytest.raises(IndexArtifactError, match=r"built with model abcdef0123456789.*runs model 0000"):
        open_index(root, expected_model_version="0000000000000000")


def test_backend_family_rule(publish_synthetic: Publish) -> None:
    root, _, _ = publish_synthetic(50, 8)
    open_index(root, backend="torch")
    open_index(root, backend="onnx")  # same fp32 numerics
    with pytest.raises(IndexArtifactError, match=r"built with backend 'torch'.*set to 'onnx-int8'"):
        open_index(root, backend="onnx-int8")
    with pytest.raises(IndexArtifactError, match="unknown serving backend 'tensorrt'"):
        open_index(root, backend="tensorrt")


@pytest.mark.parametrize("name", ["global.faiss", "items.sqlite", "vectors.npy", "categories/0000.faiss"])
def test_corrupt_file_is_refused(publish_synthetic: Publish, name: str) -> None:
    root, _, _ = publish_synthetic(80, 8)
    path = open_index(root).root / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexArtifactError, match=f"{name}: sha256 .* does not match the manifest"):
        open_index(root)


def test_truncated_and_missing_files_are_refused(publish_synthetic: Publish) -> None:
    root, _, _ = publish_synthetic(80, 8)
    vdir = open_index(root).root
    with (vdir / "vectors.npy").open("r+b") as f:
        f.truncate(100)
    with pytest.raises(IndexArtifactError, match=r"vectors\.npy: 100 bytes, the manifest says"):
        open_index(root)
    (vdir / "vectors.npy").unlink()
    with pytest.raises(IndexArtifactError, match=r"vectors\.npy: file listed in the manifest is missing"):
        open_index(root)


def test_bad_manifest_and_bad_root(publish_synthetic: Publish, tmp_path: Path) -> None:
    with pytest.raises(IndexArtifactError, match="does not exist"):
        open_index(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexArtifactError, match="neither a version directory"):
        open_index(tmp_path / "empty")
    root, _, _ = publish_synthetic(30, 8)
    manifest = open_index(root).root / "manifest.json"
    raw = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({k: v for k, v in raw.items() if k != "checkpoint_sha256"}))
    with pytest.raises(IndexArtifactError, match=r"lacks \['checkpoint_sha256'\]"):
        open_index(root)
    manifest.write_text("{not json")
    with pytest.raises(IndexArtifactError, match="not valid JSON"):
        open_index(root)


def test_version_dir_opens_directly(publish_synthetic: Publish) -> None:
    root, _, _ = publish_synthetic(30, 8)
    vdir = open_index(root).root
    assert open_index(vdir).version == vdir.name


def test_publish_keeps_old_version_readable(publish_synthetic: Publish) -> None:
    root, _, vectors = publish_synthetic(200, 8, seed=0)
    old = open_index(root)
    before = old.search(vectors[:3], k=5)
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        # Opens through `current` while versions are published: always a complete, verified version.
        while not stop.is_set():
            try:
                seen.add(open_index(root).version)
            except BaseException as e:  # any failure is the test's finding
                errors.append(e)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        for seed in (1, 2):
            publish_synthetic(200, 8, seed=seed, root=root, policy=IndexPolicy())
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert len(seen) >= 1
    assert old.search(vectors[:3], k=5) == before  # the old object still reads its own files
    assert os.readlink(root / "current") == f"versions/{list_versions(root)[-1]}"
    assert list_versions(root)[0] == old.version and open_index(old.root).version == old.version
    publish_synthetic(200, 8, seed=4, root=root)
    assert len(list_versions(root)) == 3 and old.version not in list_versions(root)  # keep=3 prunes the oldest
    assert not [p for p in (root / "versions").iterdir() if p.name.startswith(".staging")]


def test_an_open_index_keeps_answering_after_its_version_is_pruned(publish_synthetic: Publish) -> None:
    """A long-running service may hold a version that later publishes prune: every thread must still read it."""
    from concurrent.futures import ThreadPoolExecutor

    root, records, vectors = publish_synthetic(200, 8, seed=0)
    old = open_index(root)
    before = old.search(vectors[:3], k=5)
    for seed in (1, 2, 3):
        publish_synthetic(200, 8, seed=seed, root=root)
    assert old.version not in list_versions(root) and not old.root.exists()
    with ThreadPoolExecutor(4) as pool:  # fresh threads, as a server's threadpool has
        results = list(pool.map(lambda _: (old.search(vectors[:3], k=5), old.get_items([records[7].item_id])),
                                range(8)))
    assert all(hits == before and items[records[7].item_id] == records[7] for hits, items in results)
    old.close()
    with pytest.raises(RuntimeError, match="closed"):
        old.get_items([records[7].item_id])
