"""A run saved on one device resumes on another: a CPU state (disabled grad scaler, saved as {}) into an AMP run."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from training.config import TrainConfig, preset
from training.distributed import DistContext
from training.loop import epoch_loader, restore, set_up, train, train_step
from training.state import STATE_FILE, save_state


def _config(synth_root: Path, **changes: object) -> TrainConfig:
    return preset("smoke", data=str(synth_root), use_ss=False, use_pseudo=False, tsne_points=0, epochs=1,
                  triplets_per_epoch=64, **changes)


def test_cpu_state_restores_into_a_run_with_an_enabled_scaler(synth_root: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    run = set_up(_config(synth_root, device="cpu"), out_dir=tmp_path, resume=False, cache_dir=None, ctx=DistContext())
    for batch in itertools.islice(epoch_loader(run), 2):
        train_step(run, batch)
    save_state(tmp_path / STATE_FILE, run.snapshot())  # what a CPU run saves: its disabled scaler as {}
    saved = torch.load(tmp_path / STATE_FILE, map_location="cpu", weights_only=False)
    assert saved["scaler"] == {}
    run.step = run.batch_in_epoch = 0
    with torch.no_grad():
        for p in run.net.parameters():
            p.zero_()
    # What CUDA + AMP builds; GradScaler runs on CPU too, so the restore path is exercised here.
    run.scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=512.0)
    restore(run, tmp_path / STATE_FILE)
    assert (run.step, run.epoch, run.batch_in_epoch) == (2, 0, 2)
    assert run.scaler.get_scale() == 512.0
    for k, v in saved["model"].items():
        assert torch.equal(run.net.state_dict()[k], v), k
    train_step(run, next(iter(epoch_loader(run))))  # and the run goes on with the enabled scaler
    assert run.step == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_run_resumes_on_cuda_with_amp(synth_root: Path, tmp_path: Path) -> None:
    config = _config(synth_root)
    train(config.replace(device="cpu", max_steps=2), out_dir=tmp_path / "run", progress=False)
    result = train(config.replace(device="cuda", amp=True), out_dir=tmp_path / "run", resume=True, progress=False)
    assert result.steps == 4  # 64 triplets / batch 16: the epoch's remaining two steps ran on CUDA
    state = torch.load(tmp_path / "run" / STATE_FILE, map_location="cpu", weights_only=False)
    assert state["scaler"]["scale"] > 0 and state["step"] == 4
    assert all(torch.isfinite(v.float()).all() for v in state["model"].values())
