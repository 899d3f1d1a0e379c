"""Grid driver -> result JSON -> diagnostics -> docs/RESULTS.md, end to end on tiny runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from training.config import TrainConfig, preset
from training.diagnostics import run_diagnostics
from training.experiments import run_grid
from training.grids import GRIDS, SUPERVISED, SYNTH, Cell, Grid
from training.report import claim_reading, recovered, write_report

TINY = {"max_steps": 4, "epochs": 1, "tsne_points": 0, "unlabeled_batch": 32, "ss_unlabeled": 8}


def tiny_grid() -> Grid:
    return Grid("claim-synth", "tiny claim check", SYNTH, ("nondisjoint",), (0,), (
        Cell("supervised-a0.5", "smoke", {**TINY, **SUPERVISED, "labeled_fraction": 0.5}),
        Cell("options-a0.5", "smoke", {**TINY, "labeled_fraction": 0.5, "ema_decay": 0.9,
                                       "category_matching": True, "acceptance": "ratio", "queue_size": 64}),
        Cell("supervised-a1", "smoke", {**TINY, **SUPERVISED, "labeled_fraction": 1.0}),
    ))


def test_grid_diagnostics_and_report(synth_root: Path, tmp_path: Path) -> None:
    """One cell (the options path) in the default run; all three cells and the claim reading under -m slow."""
    torch.set_num_threads(2)
    results = tmp_path / "results"
    grid = tiny_grid()
    state = run_grid(grid, data=synth_root, out_dir=tmp_path / "runs", results=results / "claim-synth.json",
                     cells=["options-a0.5"])
    assert [r["cell"] for r in state["runs"]] == ["options-a0.5"]
    assert "colorhist" in state["baselines"]["nondisjoint"]
    for r in state["runs"]:
        assert 0.0 <= r["test"]["fitb"] <= 1.0 and r["steps"] == 4
        assert set(r["spread"]) >= {"mean_cosine", "effective_rank", "collapsed"}
        assert r["machine_before"]["cores"] >= 1
    # A rerun skips finished runs.
    again = run_grid(grid, data=synth_root, out_dir=tmp_path / "runs", results=results / "claim-synth.json",
                     cells=["options-a0.5"])
    assert again["runs"] == json.loads((results / "claim-synth.json").read_text())["runs"]

    ckpt = Path(state["runs"][0]["run_dir"]) / "best"
    diag = run_diagnostics(checkpoints={"synth options": ckpt}, synth=synth_root, mango=tmp_path / "absent",
                           results=results / "diagnostics.json")
    opts = diag["synth options"]["options"]
    assert diag["synth options"]["labeled_fraction"] == 0.5
    for name, m in opts.items():
        if "chance" in name:
            continue
        assert 0.0 <= m["accept_rate"] <= 1.0
        if m["pseudo_triplets"]:
            assert 0.0 <= m["compatible(Ã,P̃)"] <= 1.0
    assert opts["category-aware"]["category(Ã)=category(A)"] == 1.0  # matching never leaves A's category
    # The CLI takes NAME=DIR pairs whose names may themselves hold "=".
    from outfit_compat.cli import main

    out = tmp_path / "cli-diagnostics.json"
    assert main(["experiment", "diagnostics", "--synth", str(synth_root), "--checkpoint", f"synth α=0.5={ckpt}",
                 "--results", str(out)]) == 0
    assert list(json.loads(out.read_text())) == ["synth α=0.5"]

    doc = write_report(tmp_path / "RESULTS.md", results).read_text()
    for r in state["runs"]:
        assert f"{r['test']['auc']:.3f}" in doc
    assert "## 1. The cpu preset on Mango\n\nNot run yet." in doc
    assert "### synth options" in doc
    assert "The claim cannot be read yet" in doc


@pytest.mark.slow
def test_claim_reading_of_a_whole_tiny_grid(synth_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    state = run_grid(tiny_grid(), data=synth_root, out_dir=tmp_path / "runs", results=results / "claim-synth.json")
    assert [r["cell"] for r in state["runs"]] == ["supervised-a0.5", "options-a0.5", "supervised-a1"]
    doc = write_report(tmp_path / "RESULTS.md", results).read_text()
    assert "options-a0.5 recovers" in doc or "no gap to recover" in doc


def test_recovered_share_of_the_gap() -> None:
    share, se, gap = recovered([0.5, 0.6], [0.7, 0.8], [0.9, 1.0])
    assert gap == pytest.approx(0.4) and share == pytest.approx(0.5)
    assert se > 0
    assert recovered([0.9], [0.5], [0.8])[2] < 0  # no gap: nothing to recover
    assert math.isnan(recovered([0.5, 0.6], [0.7], [0.9, 1.0])[1])  # a one-seed method has no noise estimate


def test_claim_reading_covers_every_alpha_with_a_semi_supervised_cell() -> None:
    def runs(fitb: list[float], auc: list[float]) -> list[dict[str, object]]:
        return [{"test": {"fitb": f, "auc": a}} for f, a in zip(fitb, auc, strict=True)]

    cells = {"supervised-a0.005": runs([0.50, 0.52], [0.90, 0.91]), "options-a0.005": runs([0.50, 0.56], [0.93, 0.95]),
             "supervised-a1": runs([0.54, 0.56], [0.95, 0.96]), "supervised-a0.02": runs([0.56], [0.96]),
             "options-a0.02": runs([0.57], [0.97]), "supervised-a0.01": runs([0.55], [0.95])}
    lines = claim_reading(cells)
    assert lines.index("α = 0.5 %:") < lines.index("α = 2 %:") and "α = 1 %:" not in lines  # no method cell at 1 %
    at_half = lines[lines.index("α = 0.5 %:") + 1:lines.index("α = 2 %:")]
    assert at_half == [
        "- FITB: options-a0.005 recovers 50% ± 79 pt (s.e.) of the gap 0.510 → 0.550 (2 seeds); not beyond seed "
        "noise (2 s.e.); misses the 50 % goal.",
        "- AUC: options-a0.005 recovers 70% ± 22 pt (s.e.) of the gap 0.905 → 0.955 (2 seeds); beyond seed noise "
        "(2 s.e.); meets the 50 % goal."]
    pilot = lines[lines.index("α = 2 %:") + 1]
    assert pilot.startswith("- FITB: supervised α = 0.02 is not measurably below α = 100 %")


def test_named_grids_are_well_formed() -> None:
    for grid in GRIDS.values():
        names = [c.name for c in grid.cells]
        assert len(names) == len(set(names)), grid.name
        with pytest.raises(KeyError):
            grid.cell("nope")
    assert GRIDS["cpu-preset"].seeds == (0, 1, 2)


def _preset_state(grid: str, fitb: dict[tuple[str, int], float]) -> dict[str, object]:
    runs = [{"kind": k, "seed": s, "cell": "cpu", "test": {"fitb": f, "auc": 0.96 if k == "nondisjoint" else 0.81},
             "steps": 600, "seconds": 60.0, "spread": {"mean_cosine": 0.3, "effective_rank": 20.0, "collapsed": False}}
            for (k, s), f in fitb.items()]
    baselines = {k: {"colorhist": {"fitb": 0.40, "auc": 0.65}} for k in ("nondisjoint", "disjoint")}
    return {"grid": grid, "about": grid, "runs": runs, "baselines": baselines}


def test_preset_section_reports_misses_missing_seeds_and_the_step_comparison(tmp_path: Path) -> None:
    """Rendering only: the verdict per seed, the seeds not run, and both presets' means over shared seeds."""
    (tmp_path / "cpu-preset.json").write_text(json.dumps(_preset_state("cpu-preset", {
        ("nondisjoint", 0): 0.60, ("nondisjoint", 1): 0.57, ("disjoint", 0): 0.55})))
    (tmp_path / "cpu-preset-300steps.json").write_text(json.dumps(_preset_state("cpu-preset-300steps", {
        ("nondisjoint", 0): 0.585, ("nondisjoint", 1): 0.557, ("nondisjoint", 2): 0.555, ("disjoint", 0): 0.537})))
    doc = write_report(tmp_path / "RESULTS.md", tmp_path).read_text()
    assert "| cpu preset | 0 | 60.0% | 0.960 | yes |" in doc
    assert "| cpu preset | 1 | 57.0% | 0.960 | no (FITB -1.0 pt) |" in doc
    assert "| cpu preset | 0 | 55.0% | 0.810 | no (FITB -1.0 pt) |" in doc  # disjoint: 56 % target
    assert "Seeds not run (CPU time): 2." in doc and "Seeds not run (CPU time): 1, 2." in doc
    assert "| 300-step preset | 2 | 55.5% |" in doc
    assert doc.count("| colour histogram | – | 40.0% | 0.650 |") == 4  # a baseline row per split and preset
    assert "| nondisjoint | 0, 1 | 57.1 ± 2.0% | 58.5 ± 2.1% |" in doc
    assert "| disjoint | 0 | 53.7% | 55.0% |" in doc


def test_sweep_sections_name_their_grid_and_each_run_seed(tmp_path: Path) -> None:
    def run(cell: str, seed: int, fitb: float) -> dict[str, object]:
        return {"cell": cell, "about": f"about {cell}", "kind": "disjoint", "seed": seed, "steps": 600,
                "seconds": 1500.0, "test": {"fitb": fitb, "auc": 0.806}, "valid": {"fitb": 0.5, "auc": 0.8}}

    (tmp_path / "disjoint-sweep.json").write_text(json.dumps(
        {"about": "around the preset", "runs": [run("shape-aug-0.5", 0, 0.56), run("shape-aug-0.5", 1, 0.54)]}))
    doc = write_report(tmp_path / "RESULTS.md", tmp_path).read_text()
    assert "Grid `disjoint-sweep`: around the preset." in doc
    assert "| shape-aug-0.5 | about shape-aug-0.5 | disjoint | 0 | 56.0% | 0.806 |" in doc
    assert "| shape-aug-0.5 | about shape-aug-0.5 | disjoint | 1 | 54.0% | 0.806 |" in doc


def test_selection_section_applies_each_policy_to_the_probed_validations(tmp_path: Path) -> None:
    def m(fitb: float, auc: float = 0.8) -> dict[str, float]:
        return {"fitb": fitb, "auc": auc}

    def epoch(e: int, w_valid: float, w_test: float, a_valid: float, a_test: float) -> dict[str, object]:
        return {"epoch": e, "step": 200 * (e + 1), "valid": m(a_valid), "probe": {
            "weights": {"valid": m(w_valid), "test": m(w_test)}, "average": {"valid": m(a_valid), "test": m(a_test)}}}

    runs = [{"cell": "weight-ema-0.99", "kind": "disjoint", "seed": s, "epochs": [
        epoch(0, 0.60, 0.50, 0.55, 0.52), epoch(1, 0.50, 0.54, 0.58, 0.56), epoch(2, 0.55, 0.56 + s / 100, 0.57, 0.58)]}
        for s in (0, 1)]
    runs.append({"cell": "weight-ema-0.99", "kind": "disjoint", "seed": 2, "epochs": [{"epoch": 0, "valid": m(0.5)}]})
    (tmp_path / "selection-sweep.json").write_text(json.dumps({"about": "policies", "runs": runs}))
    doc = write_report(tmp_path / "RESULTS.md", tmp_path).read_text()
    # trained weights: best valid is epoch 0; averaged: epoch 1; "last" is epoch 2 for both
    assert "| disjoint | 0 | 50.0% / 0.800 (0) | 56.0% / 0.800 (2) | 56.0% / 0.800 (1) | 58.0% / 0.800 (2) |" in doc
    assert "| disjoint, mean | 2 seeds | 50.0% / 0.800 | 56.5% / 0.800 | 56.0% / 0.800 | 58.0% / 0.800 |" in doc
    assert "| disjoint | 2 |" not in doc  # a run without probes has no policy row


def test_recorded_runs_are_what_their_grid_cells_train_today() -> None:
    """Every run in benchmarks/results/<grid>.json has the config its cell builds now (a preset change must pin
    the earlier grids, as `shape_aug: 0` does), outputs that do not change the model aside."""
    outputs = {"tsne_points", "log_every", "eval_batch", "workers", "device", "checkpoint_every", "probe_test"}
    default = TrainConfig().to_dict()  # a field a run does not record did not exist yet: it ran as the default
    checked = 0
    for path in sorted((Path(__file__).parents[2] / "benchmarks" / "results").glob("*.json")):
        state = json.loads(path.read_text())
        grid = GRIDS.get(state.get("grid", "")) if isinstance(state, dict) else None
        if grid is None:
            continue
        for r in state["runs"]:
            cell = grid.cell(r["cell"])
            want = preset(cell.preset, **{**cell.overrides, "data": r["config"]["data"], "kind": r["kind"],
                                          "seed": r["seed"]}).to_dict()
            got = {**default, **r["config"]}
            diff = {k: (want[k], got[k]) for k in want if k not in outputs and want[k] != got[k]}
            assert not diff, (path.name, r["cell"], r["kind"], r["seed"], diff)
            checked += 1
    assert checked >= 40
