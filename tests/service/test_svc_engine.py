"""Loading and reloading: checkpoint from the manifest, mismatches refused, failed reloads keep serving."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from embedder import EmbedderConfig, PreprocessConfig, build_embedder, save_checkpoint
from service.app import create_app
from service.engine import EngineLoadError, load_engine
from service.settings import Settings, usable_cpus


def _load(index: Path, checkpoint: Path | None) -> Any:
    return load_engine(index_root=index, checkpoint=checkpoint, backend=None, batch_max_size=4,
                       batch_max_wait_s=0.001, queue_size=8, retry_after_s=1, metrics=None)


def test_checkpoint_defaults_to_the_one_the_index_records(service_index: Path, random_checkpoint: Path) -> None:
    engine = _load(service_index, None)
    assert engine.checkpoint.resolve() == random_checkpoint.resolve()
    assert engine.calibrated is False and engine.calibration.fitted_on == "uncalibrated-default"


@pytest.mark.parametrize("workers", [1, 3])
def test_index_work_runs_at_most_index_workers_at_once_in_arrival_order(
    service_index: Path, workers: int
) -> None:
    engine = replace(_load(service_index, None), index_workers=workers)
    lock = threading.Lock()
    running, peak, started = 0, 0, []

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            started.append(n)
        time.sleep(0.05)  # off the GIL, as FAISS and SQLite are: only the limit keeps the others out
        with lock:
            running -= 1
        return n * n

    async def main() -> list[int]:
        async def one(n: int) -> int:
            await asyncio.sleep(0.001 * n)  # arrive in order
            return await engine.run(work, n)

        return await asyncio.gather(*(one(n) for n in range(12)))

    assert asyncio.run(main()) == [n * n for n in range(12)]
    assert peak == workers
    if workers == 1:
        assert started == list(range(12))  # first come, first served


def test_index_workers_default_to_two_per_usable_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert Settings().resolved_index_workers == 2 * usable_cpus()
    monkeypatch.setenv("OUTFIT_INDEX_WORKERS", "5")
    assert Settings().resolved_index_workers == 5
    monkeypatch.setenv("OUTFIT_INDEX_WORKERS", "0")
    with pytest.raises(ValueError, match="index_workers"):
        Settings()


def test_index_of_another_model_is_refused(service_index: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    other = build_embedder(EmbedderConfig(embed_dim=32, preprocess=PreprocessConfig(image_size=64)))
    save_checkpoint(other, tmp_path / "other", training_config={})
    with pytest.raises(EngineLoadError, match="rebuild the index"):
        _load(service_index, tmp_path / "other")


def test_missing_index_is_a_clear_error(tmp_path: Path, random_checkpoint: Path) -> None:
    with pytest.raises(EngineLoadError, match="does not exist"):
        _load(tmp_path / "nope", random_checkpoint)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OUTFIT_INDEX", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/2")
    monkeypatch.setenv("OUTFIT_BATCH_MAX_SIZE", "7")
    monkeypatch.setenv("OUTFIT_ADMIN_API_KEY", "zq-secret-77")
    s = Settings()
    assert s.index == tmp_path and s.redis_url == "redis://example:6379/2" and s.batch_max_size == 7
    assert s.admin_api_key is not None and s.admin_api_key.get_secret_value() == "zq-secret-77"
    assert "zq-secret-77" not in repr(s)  # never logged
    monkeypatch.setenv("OUTFIT_BATCH_MAX_SIZE", "0")
    with pytest.raises(ValueError, match="batch_max_size"):
        Settings()


def test_empty_environment_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OUTFIT_INDEX", "OUTFIT_CHECKPOINT", "OUTFIT_BACKEND", "REDIS_URL", "OUTFIT_ADMIN_API_KEY"):
        monkeypatch.setenv(name, "")
    s = Settings()
    assert s.index is None and s.checkpoint is None and s.backend is None
    assert s.redis_url is None and s.admin_api_key is None


def test_failed_reload_keeps_the_old_engine(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as c:
        before = c.get("/readyz").json()
        r = c.post("/v1/admin/reload", headers={"X-API-Key": "s3cret"}, json={"index": str(tmp_path / "gone")})
        assert r.status_code == 409 and r.json()["error"]["code"] == "load_failed"
        assert c.get("/readyz").json() == before
        assert c.get("/v1/categories").status_code == 200


def test_admin_is_disabled_without_a_key(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(admin_api_key=None)), raise_server_exceptions=False) as c:
        r = c.post("/v1/admin/reload", headers={"X-API-Key": "anything"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"


def test_not_ready_without_an_index(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(index=None)), raise_server_exceptions=False) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 503
        r = c.get("/v1/categories")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"


def test_calibration_from_the_checkpoint_drives_the_score(
    make_settings: Callable[..., Settings], random_checkpoint: Path, tmp_path: Path
) -> None:
    """Same weights (so the same model_version and index), plus a fitted calibration in the card."""
    import numpy as np

    from embedder import load_embedder
    from embedder.calibration import Calibration

    model, card = load_embedder(random_checkpoint)
    cal = Calibration(slope=-9.0, intercept=2.5, fitted_on="valid nondisjoint", n_examples=100, auc=0.7)
    calibrated = tmp_path / "calibrated"
    new_card = save_checkpoint(model, calibrated, training_config={}, extra={"calibration": cal.to_dict()})
    assert new_card.model_version == card.model_version
    with TestClient(create_app(make_settings(checkpoint=calibrated)), raise_server_exceptions=False) as c:
        assert c.get("/readyz").json()["calibrated"] is True
        engine = c.app.state.service.engine
        probe = np.zeros((1, engine.index.dim), dtype=np.float32)
        probe[0, 0] = 1.0
        ids = [h.item_id for h in engine.index.search(probe, k=3)[0]]
        body = c.post("/v1/compatibility", json={"item_ids": ids}).json()
        assert body["calibrated"] is True and body["calibration"] == "valid nondisjoint"
        assert body["score"] == pytest.approx(cal.probability(body["mean_distance"]), abs=1e-9)
