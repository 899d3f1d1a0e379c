"""Uploads' category from the checkpoint's category head (issue 14), through the real app."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch


def test_served_uploads_take_the_head_category(
    tmp_path: Path, random_checkpoint: Path, service_index: Path, synth_root: Path
) -> None:
    """An engine loads the checkpoint's head; an upload's category and confidence come from the head's
    probabilities, computed in the same forward pass as its embedding (also on a cached embedding)."""
    import image_corpus
    from fastapi.testclient import TestClient

    from catalog.polyvore import PolyvoreDataset
    from embedder.category_head import HEAD_FILE, CategorisingEmbedder, CategoryBranch, save_category_head
    from embedder.checkpoint import load_embedder, read_model_card
    from embedder.image_io import decode_image
    from embedder.preprocess import to_model_input
    from service.app import create_app
    from service.engine import EngineLoadError, load_engine
    from service.settings import Settings

    ckpt = tmp_path / "ckpt"
    shutil.copytree(random_checkpoint, ckpt)
    classes = tuple(sorted({i.category for i in PolyvoreDataset(synth_root).items.values()}))
    torch.manual_seed(3)
    branch = CategoryBranch(len(classes)).eval()
    save_category_head(ckpt, branch, classes, model_version=read_model_card(ckpt).model_version)
    photo = image_corpus.jpeg_bytes((100, 130))
    model, card = load_embedder(ckpt)
    x = torch.from_numpy(to_model_input(decode_image(photo), card.config.preprocess)[None])
    with torch.inference_mode():
        probs = CategorisingEmbedder(model, branch)(x)[1].numpy()[0]
    want = classes[int(probs.argmax())]
    with TestClient(create_app(Settings(index=service_index, checkpoint=ckpt))) as client:
        engine = client.app.state.service.engine
        assert engine.category_head is not None and engine.backend.has_categories
        if engine.backend.name == "torch":
            assert engine.category_head is engine.backend.category_head  # the torch backend's, not read twice
        else:
            assert engine.category_head.branch is None  # the export computes the branch
        for cached in (False, True):
            body = client.post("/v1/complementary", files={"image": ("p.jpg", photo, "image/jpeg")}).json()
            q = body["query"]
            assert q["embedding_cached"] is cached
            assert q["categories"] == [want] and q["category_source"] == "head" and q["category_inferred"] is True
            assert q["category_confidence"] == pytest.approx(float(probs.max()), abs=1e-4) and q["inferred_from"] == []
            assert all(g["category"] != want for g in body["groups"])
        outfits = client.post("/v1/outfits/complete", files={"images": ("p.jpg", photo, "image/jpeg")},
                              data={"n_outfits": "1"}).json()
        (seed,) = outfits["seeds"]
        assert seed["category"] == want and seed["category_source"] == "head"
        assert seed["category_confidence"] == pytest.approx(float(probs.max()), abs=1e-4)
        emb = client.post("/v1/embed", files={"image": ("p.jpg", photo, "image/jpeg")}).json()["embedding"]
        assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-4) and len(emb) == card.config.embed_dim
    from embedder.onnx_export import export_onnx

    export_onnx(ckpt)  # an export computes the branch: the engine keeps the head's classes, not its weights
    engine = load_engine(index_root=service_index, checkpoint=ckpt, backend="openvino", batch_max_size=4,
                         batch_max_wait_s=0.0, queue_size=8, retry_after_s=1, metrics=None)
    try:
        assert engine.backend.has_categories and engine.category_head is not None
        assert engine.category_head.branch is None and engine.category_head.classes == classes
        emb, got = engine.backend.embed_with_categories(x.numpy())
        assert got is not None and engine.category_head.pick(got[0])[0] == want
    finally:
        asyncio.run(engine.aclose())
        engine.index.close()
    (ckpt / HEAD_FILE).write_text("{}")
    with pytest.raises(EngineLoadError, match="category head is unreadable"):
        load_engine(index_root=service_index, checkpoint=ckpt, backend=None, batch_max_size=4, batch_max_wait_s=0.0,
                    queue_size=8, retry_after_s=1, metrics=None)


def test_a_cached_row_needs_a_unit_embedding_and_a_probability_vector() -> None:
    """With a head, an upload's cached row is its embedding then the head's probabilities; a row that is not
    both (a stale or foreign cache entry) is recomputed, never served."""
    from service.uploads import _embedding_of

    vec = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    good = np.concatenate([vec, np.array([0.25, 0.75], dtype=np.float32)])
    row = _embedding_of(good.tobytes(), 3, 2)
    assert row is not None and row.tolist() == good.tolist()
    assert _embedding_of(vec.tobytes(), 3, 0) is not None  # no head: the embedding alone
    for bad in (vec, np.concatenate([vec, [0.5, 0.6]]), np.concatenate([vec, [1.5, -0.5]]),
                np.concatenate([vec * 2, [0.25, 0.75]]), np.concatenate([vec, [np.nan, 1.0]])):
        assert _embedding_of(np.asarray(bad, dtype=np.float32).tobytes(), 3, 2) is None
