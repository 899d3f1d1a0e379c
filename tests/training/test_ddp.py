"""DDP for real: `torchrun` with 2 CPU processes on the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch


def test_torchrun_two_processes_gloo(synth_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "outfit_compat", "train", "--data", str(synth_root), "--out", str(out), "--preset", "smoke",
        "--no-ss", "--epochs", "1", "--device", "cpu", "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 160 triplets per epoch shared by 2 processes of 16: 5 steps, each seeing 2 × 16 triplets.
    state = torch.load(out / "state.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 5 and state["epoch"] == 1
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 5 and 0.0 <= result["test"]["auc"] <= 1.0
    # The run ends with a cross-rank parameter check (raises if the replicas diverged): it passed.
    assert "replicas diverged" not in proc.stderr
