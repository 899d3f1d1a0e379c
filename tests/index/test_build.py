"""The build job end to end on real image files: embeddings, rejects, resume, Polyvore sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from catalog_fixture import write_image_catalog

from catalog.errors import DatasetError
from embedder.backend import embed_pil, load_backend
from embedder.image_io import load_image_file
from index import open_index
from index.build import build_catalog_index
from index.embed_job import EmbedJobConfig
from index.errors import IndexBuildError
from index.layout import WORK_DIR

JOB = EmbedJobConfig(batch_size=8, num_workers=0, chunk_size=16, progress=False)


def test_build_embeds_every_readable_image(tmp_path: Path, random_checkpoint: Path) -> None:
    catalog = write_image_catalog(tmp_path / "shop")
    job = EmbedJobConfig(batch_size=8, num_workers=2, chunk_size=16, progress=False)
    res = build_catalog_index(checkpoint=random_checkpoint, catalog=catalog, out=tmp_path / "idx", job=job)
    assert res.count == 36 and res.rejects == 2 and res.stats.embedded == 36
    idx = open_index(tmp_path / "idx")
    backend = load_backend(random_checkpoint)
    assert idx.manifest["model_version"] == backend.card.model_version and idx.manifest["backend"] == "torch"
    assert idx.categories() == {"bottoms": 12, "shoes": 12, "tops": 12}
    ids = ["p0000", "p0007", "p0035"]
    files = [tmp_path / "shop" / "images" / f"{i}.{'png' if int(i[1:]) % 2 else 'jpg'}" for i in ids]
    alone = embed_pil(backend, [load_image_file(f) for f in files])
    np.testing.assert_allclose(idx.vectors(ids), alone, atol=1e-5)  # the job embeds exactly like the embedder
    assert idx.search(alone, k=1)[0][0].item_id == "p0000"
    rec = idx.get_items(["p0007"])["p0007"]
    assert (rec.category, rec.title, rec.price, rec.url) == ("bottoms", "product 7", 17.0, "https://shop.example/p7")
    assert idx.image_path("p0007") == tmp_path / "shop" / "images" / "p0007.png"
    assert not (tmp_path / "idx" / WORK_DIR).exists()


def test_rejects_report_lists_bad_images(tmp_path: Path, random_checkpoint: Path) -> None:
    catalog = write_image_catalog(tmp_path / "shop", n=6)
    build_catalog_index(checkpoint=random_checkpoint, catalog=catalog, out=tmp_path / "idx", job=JOB)
    idx = open_index(tmp_path / "idx")
    rejects = [json.loads(line) for line in (idx.root / "rejects.jsonl").read_text().splitlines()]
    assert {r["item_id"]: r["code"] for r in rejects} == {"zz-missing": "unreadable", "zz-corrupt": "corrupt"}
    assert all("nope.jpg" in r["message"] or "broken.jpg" in r["message"] for r in rejects)
    assert idx.manifest["rejects"] == 2 and not idx.has("zz-missing") and idx.count == 6


def test_resume_after_crash_embeds_only_missing_chunks(tmp_path: Path, random_checkpoint: Path) -> None:
    catalog = write_image_catalog(tmp_path / "shop", n=40)

    def crash_after_two(chunk: int) -> None:
        if chunk == 1:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        build_catalog_index(checkpoint=random_checkpoint, catalog=catalog, out=tmp_path / "idx", job=JOB,
                            on_chunk=crash_after_two)
    assert not (tmp_path / "idx" / "current").exists()  # nothing published by the crashed job
    chunks = sorted((tmp_path / "idx" / WORK_DIR).glob("*/chunk-*.npz"))
    assert [c.name for c in chunks] == ["chunk-000000.npz", "chunk-000001.npz"]
    seen: list[int] = []
    res = build_catalog_index(checkpoint=random_checkpoint, catalog=catalog, out=tmp_path / "idx", job=JOB,
                              on_chunk=seen.append)
    assert seen == [2] and res.stats.reused_chunks == 2 and res.stats.embedded == 40 - 32 + 0
    resumed = open_index(tmp_path / "idx")
    clean = build_catalog_index(checkpoint=random_checkpoint, catalog=catalog, out=tmp_path / "clean", job=JOB)
    assert clean.count == resumed.count == 40
    ids = [f"p{i:04d}" for i in range(40)]
    np.testing.assert_array_equal(resumed.vectors(ids), open_index(tmp_path / "clean").vectors(ids))


def test_resume_state_of_another_catalog_is_not_reused(tmp_path: Path, random_checkpoint: Path) -> None:
    first = write_image_catalog(tmp_path / "a", n=20)
    with pytest.raises(KeyboardInterrupt):
        build_catalog_index(checkpoint=random_checkpoint, catalog=first, out=tmp_path / "idx", job=JOB,
                            on_chunk=lambda c: (_ for _ in ()).throw(KeyboardInterrupt()))
    second = write_image_catalog(tmp_path / "b", n=20, seed=1, start=100)
    res = build_catalog_index(checkpoint=random_checkpoint, catalog=second, out=tmp_path / "idx", job=JOB)
    assert res.stats.reused_chunks == 0 and open_index(tmp_path / "idx").has("p0100")


def test_bad_inputs(tmp_path: Path, random_checkpoint: Path) -> None:
    with pytest.raises(DatasetError, match="catalog file is missing"):
        build_catalog_index(checkpoint=random_checkpoint, catalog=tmp_path / "none.jsonl", out=tmp_path / "i")
    (tmp_path / "dir").mkdir()
    with pytest.raises(DatasetError, match="Polyvore layout"):
        build_catalog_index(checkpoint=random_checkpoint, catalog=tmp_path / "dir", out=tmp_path / "i")
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text(json.dumps({"item_id": "x", "image": "nope.jpg", "category": "tops"}) + "\n")
    with pytest.raises(IndexBuildError, match="none of the 1 images could be read"):
        build_catalog_index(checkpoint=random_checkpoint, catalog=only_bad, out=tmp_path / "i", job=JOB)


def test_polyvore_dataset_is_indexed(tmp_path: Path, random_checkpoint: Path, synth_root: Path) -> None:
    from catalog.polyvore import PolyvoreDataset

    ds = PolyvoreDataset(synth_root)
    job = EmbedJobConfig(batch_size=32, num_workers=1, chunk_size=128, progress=False)
    res = build_catalog_index(checkpoint=random_checkpoint, catalog=synth_root, out=tmp_path / "idx", job=job)
    idx = open_index(tmp_path / "idx")
    assert res.count + res.rejects == len(ds.items) == idx.count + idx.manifest["rejects"]
    expected: dict[str, int] = {}
    for it in ds.items.values():
        expected[it.category] = expected.get(it.category, 0) + 1
    assert idx.categories() == expected
    assert idx.manifest["source"]["kind"] == "polyvore"
