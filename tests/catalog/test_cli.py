from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_polyvore import write_tiny

from outfit_compat.cli import main


def test_stats_cli_prints_json_and_exits_nonzero_when_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_tiny(tmp_path / "d")
    assert main(["data", "stats", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    (root / "images" / "t1.jpg").unlink()
    assert main(["data", "stats", str(root), "--polyvore-split", "disjoint"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "disjoint" and out["missing_images"] == 1


def test_stats_cli_on_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", str(tmp_path / "none")]) == 1
    assert "does not exist" in json.loads(capsys.readouterr().out)["problems"][0]
