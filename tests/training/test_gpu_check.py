"""benchmarks/gpu_check.py --cpu: the GPU check's phases (paper preset path, CPU -> device resume, torchrun with one
process) run tiny on CPU, so the script a GPU machine runs in one call is known to work before it gets one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_cpu_rehearsal(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check_cpu.json"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--cpu", "--work",
                           str(tmp_path / "work"), "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=2400, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["ok"] and result["mode"] == "cpu"
    phases = result["phases"]
    paper = phases["paper"]
    assert paper["steps"] == 3 and paper["losses_finite"] and paper["images_per_s"] > 0
    assert paper["config"]["preset"] == "paper" and paper["config"]["amp"] and paper["config"]["channels_last"]
    assert phases["paper_exact"]["config"]["ss_unlabeled"] == 0
    resume = phases["resume"]
    assert resume["ok"] and resume["scaler_state_saved_on_cpu"] == {} and resume["steps_after_resume"] == 4
    torchrun = phases["torchrun"]
    assert torchrun["ok"] and torchrun["backend"] == "gloo"
    assert torchrun["ddp_probe"]["result"]["world_size"] == 1 and torchrun["trainer"]["steps"] == 4


def test_gpu_check_refuses_without_cuda_unless_cpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out",
                           str(tmp_path / "x.json")], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 2 and "--cpu" in proc.stderr
    assert not (tmp_path / "x.json").exists()
