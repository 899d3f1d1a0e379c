"""A shop's own data end to end: `data import` -> `train` -> `evaluate` -> `index build` (from the CSV) -> service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shop_catalog import ShopFiles, write_shop

from outfit_compat.cli import main


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopFiles:
    return write_shop(tmp_path_factory.mktemp("shop_e2e"), items=160, outfits=70, seed=2)


def test_import_train_evaluate_index_and_serve(
    shop: ShopFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings
    from training.config import preset
    from training.loop import train

    data = tmp_path / "dataset"
    assert main(["data", "import", "--catalog", str(shop.catalog), "--outfits", str(shop.outfits),
                 "--out", str(data)]) == 0
    capsys.readouterr()

    torch.set_num_threads(2)
    run = train(preset("smoke", data=str(data), max_steps=3, tsne_points=0), out_dir=tmp_path / "run",
                progress=False)
    assert run.steps == 3 and 0.0 <= run.test["auc"] <= 1.0

    assert main(["evaluate", "--data", str(data), "--checkpoint", str(run.best_checkpoint)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["fitb"] <= 1.0 and 0.0 <= metrics["auc"] <= 1.0

    index = tmp_path / "index"
    assert main(["index", "build", "--checkpoint", str(run.best_checkpoint), "--catalog", str(shop.catalog),
                 "--out", str(index), "--workers", "0", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == len(shop.rows)

    settings = Settings(index=index, checkpoint=run.best_checkpoint, batch_max_wait_ms=2.0)
    with TestClient(create_app(settings)) as client:
        item = client.get("/v1/items/P-0000").json()
        assert item["category"] == "tops" and item["price"] == shop.rows[0]["price"]
        resp = client.post("/v1/complementary", json={"item_ids": ["P-0000"], "per_category": 3})
        assert resp.status_code == 200, resp.text
        groups = {g["category"]: g["items"] for g in resp.json()["groups"]}
        assert groups and "tops" not in groups and all(len(v) <= 3 for v in groups.values())
        image = client.get(groups[next(iter(groups))][0]["image_url"])
        assert image.status_code == 200 and image.content
