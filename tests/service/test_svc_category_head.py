"""Uploads' category from the checkpoint's category head (issue 14), through the real app."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from embedder.category_head import HEAD_FILE, fit_category_head, save_category_head


def test_served_uploads_take_the_head_category(
    tmp_path: Path, random_checkpoint: Path, service_index: Path, synth_root: Path
) -> None:
    """An engine loads the checkpoint's head; an upload's category and confidence come from it."""
    import image_corpus
    from fastapi.testclient import TestClient

    from catalog.polyvore import PolyvoreDataset
    from embedder.checkpoint import read_model_card
    from index import open_index
    from service.app import create_app
    from service.engine import EngineLoadError, load_engine
    from service.settings import Settings

    ckpt = tmp_path / "ckpt"
    shutil.copytree(random_checkpoint, ckpt)
    idx = open_index(service_index)
    items = PolyvoreDataset(synth_root).items
    ids = sorted(items)
    version = read_model_card(ckpt).model_version
    save_category_head(ckpt, fit_category_head(idx.vectors(ids), [items[i].category for i in ids],
                                               model_version=version))
    photo = image_corpus.jpeg_bytes((100, 130))
    with TestClient(create_app(Settings(index=service_index, checkpoint=ckpt))) as client:
        engine = client.app.state.service.engine
        assert engine.category_head is not None
        body = client.post("/v1/complementary", files={"image": ("p.jpg", photo, "image/jpeg")}).json()
        emb = client.post("/v1/embed", files={"image": ("p.jpg", photo, "image/jpeg")}).json()["embedding"]
        want, conf = engine.category_head.predict(np.array([emb]))[0]
        q = body["query"]
        assert q["categories"] == [want] and q["category_source"] == "head" and q["category_inferred"] is True
        assert q["category_confidence"] == pytest.approx(conf, abs=1e-5) and q["inferred_from"] == []
    (ckpt / HEAD_FILE).write_text("{}")
    with pytest.raises(EngineLoadError, match="category head is unreadable"):
        load_engine(index_root=service_index, checkpoint=ckpt, backend=None, batch_max_size=4, batch_max_wait_s=0.0,
                    queue_size=8, retry_after_s=1, metrics=None)
