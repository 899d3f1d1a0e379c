"""--weight-ema (the moving average of the weights is the product), --select-epoch and --probe-test, on real
(small) runs on the synthetic set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from embedder import load_embedder
from training.config import ConfigError, TrainConfig, preset
from training.loop import train


def _config(synth_root: Path, **overrides: object) -> TrainConfig:
    return preset("smoke", data=str(synth_root), use_ss=False, use_pseudo=False, tsne_points=0, epochs=2,
                  triplets_per_epoch=64, **overrides)


def _state(run: Path) -> dict[str, object]:
    return torch.load(run / "state.pt", map_location="cpu", weights_only=False)  # type: ignore[no-any-return]


def test_the_averaged_weights_are_validated_and_saved_and_the_probe_logs_both(synth_root: Path,
                                                                             tmp_path: Path) -> None:
    torch.set_num_threads(2)
    out = tmp_path / "run"
    result = train(_config(synth_root, weight_ema=0.5, select_epoch="last", probe_test=True), out_dir=out,
                   progress=False)
    assert result.best_epoch == 1  # "last": no choice between epochs
    state = _state(out)
    average, weights = state["weight_ema"], state["model"]
    assert isinstance(average, dict) and isinstance(weights, dict)
    saved = load_embedder(result.best_checkpoint)[0].state_dict()
    # The product is the average, not the weights the optimiser moved last.
    assert all(torch.equal(saved[k].cpu(), average[k]) for k in saved)
    assert any(not torch.equal(average[k], weights[k]) for k in average if average[k].is_floating_point())
    epochs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [e for e in epochs if e["type"] == "epoch" and e["epoch"] >= 0]
    assert [e["epoch"] for e in epochs] == [0, 1]
    for e in epochs:
        assert set(e["probe"]) == {"weights", "average"}
        assert e["probe"]["average"]["valid"] == e["valid"]  # validation scored the average
        assert {"fitb", "auc"} <= e["probe"]["weights"]["test"].keys()
    # The last epoch's probe of the average is what the finished run reports on test.
    assert epochs[-1]["probe"]["average"]["test"]["auc"] == pytest.approx(result.test["auc"], abs=1e-6)


def test_without_averaging_nothing_changes_and_no_probe_is_logged(synth_root: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    plain = train(_config(synth_root), out_dir=tmp_path / "plain", progress=False)
    probed = train(_config(synth_root, probe_test=True), out_dir=tmp_path / "probed", progress=False)
    # The probe only reads: the same seed trains the same weights and reports the same test figures.
    a, b = _state(tmp_path / "plain")["model"], _state(tmp_path / "probed")["model"]
    assert isinstance(a, dict) and isinstance(b, dict)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert plain.test == probed.test and _state(tmp_path / "plain")["weight_ema"] is None
    history = (tmp_path / "plain" / "metrics.jsonl").read_text()
    assert '"probe"' not in history and '"probe"' in (tmp_path / "probed" / "metrics.jsonl").read_text()


def test_resume_restores_the_average(synth_root: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    config = _config(synth_root, weight_ema=0.9)
    train(config, out_dir=tmp_path / "straight", progress=False)
    train(config.replace(max_steps=3), out_dir=tmp_path / "resumed", progress=False)
    train(config, out_dir=tmp_path / "resumed", resume=True, progress=False)
    straight, resumed = _state(tmp_path / "straight")["weight_ema"], _state(tmp_path / "resumed")["weight_ema"]
    assert isinstance(straight, dict) and isinstance(resumed, dict)
    for k in straight:
        assert torch.allclose(straight[k].float(), resumed[k].float(), atol=1e-6), k
    # A state saved without an average cannot silently start a fresh one.
    train(_config(synth_root).replace(max_steps=3), out_dir=tmp_path / "plain", progress=False)
    with pytest.raises(ConfigError, match="different"):
        train(config, out_dir=tmp_path / "plain", resume=True, progress=False)


@pytest.mark.parametrize(("option", "value"), [("weight_ema", 1.0), ("weight_ema", -0.1), ("select_epoch", "first")])
def test_bad_values_are_refused_by_name(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option.replace("_", "-")):
        preset("smoke", **{option: value})
