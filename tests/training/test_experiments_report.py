"""Sweep driver -> result JSON -> diagnostics -> docs/RESULTS.md, end to end on a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.experiments import run_diagnostics, run_sweep
from training.report import write_report


def test_sweep_diagnostics_and_report(synth_root: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    results = tmp_path / "results"
    state = run_sweep(data=synth_root, out_dir=tmp_path / "runs", results=results / "ablation.json",
                      preset_name="smoke", kinds=["nondisjoint"], fractions=[1.0], seeds=[0],
                      methods=["supervised (L_l)"])
    assert len(state["runs"]) == 1 and "colorhist" in state["baselines"]["nondisjoint"]
    # A rerun skips finished cells.
    again = run_sweep(data=synth_root, out_dir=tmp_path / "runs", results=results / "ablation.json",
                      preset_name="smoke", kinds=["nondisjoint"], fractions=[1.0], seeds=[0],
                      methods=["supervised (L_l)"])
    assert again["runs"] == json.loads((results / "ablation.json").read_text())["runs"]
    diag = run_diagnostics(ablation=results / "ablation.json", results=results / "diagnostics.json")
    (entry,) = diag.values()
    for m in entry["pseudo_triplets"]["by_batch"].values():
        assert 0.0 <= m["theme(Ã)=theme(P̃)"] <= 1.0
    assert entry["pseudo_triplets"]["labeled"]["theme(A)=theme(P)"] > 0.9  # outfits are single-theme
    doc = write_report(tmp_path / "RESULTS.md", results).read_text()
    run = state["runs"][0]
    assert f"{run['test']['fitb'] * 100:.1f}%" in doc and f"{run['test']['auc']:.3f}" in doc
    assert "| +L_ss | 1 | 0 | not run | not run | not run | – | – |" in doc
    assert "Not run yet: `outfit-compat experiment real" in doc


def test_sweep_rejects_unknown_method(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown methods"):
        run_sweep(data=synth_root, out_dir=tmp_path, results=tmp_path / "r.json", preset_name="smoke",
                  kinds=["nondisjoint"], fractions=[1.0], seeds=[0], methods=["magic"])
