from __future__ import annotations

import pytest
import torch

from training.step import NonFiniteLossError, autocast, load_scaler_state, make_scaler, optimizer_step


def _setup() -> tuple[torch.nn.Linear, torch.optim.Optimizer, torch.amp.GradScaler]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1), make_scaler(torch.device("cpu"), enabled=True)


def test_step_updates_and_clips() -> None:
    model, opt, scaler = _setup()
    before = model.weight.detach().clone()
    x = torch.full((8, 4), 100.0)
    with autocast(torch.device("cpu"), enabled=True):  # a no-op on CPU
        loss = model(x).pow(2).mean()
    norm = optimizer_step(loss=loss, parameters=model.parameters(), optimizer=opt, scaler=scaler, clip_norm=1.0, step=0)
    assert norm > 1.0  # reported before clipping
    moved = (model.weight.detach() - before).norm().item()
    assert 0 < moved <= 0.1 * 1.0 + 1e-6  # lr × clipped norm bounds the update


def test_nan_loss_stops_with_clear_message() -> None:
    model, opt, scaler = _setup()
    before = model.weight.detach().clone()
    loss = model(torch.ones(2, 4)).sum() * float("nan")
    with pytest.raises(NonFiniteLossError, match="at step 7; stopping"):
        optimizer_step(loss=loss, parameters=model.parameters(), optimizer=opt, scaler=scaler, clip_norm=1.0, step=7)
    assert torch.equal(model.weight.detach(), before)


def test_empty_scaler_state_means_a_fresh_scaler() -> None:
    # A CPU run's scaler is disabled and saves {}; an enabled scaler (CUDA + AMP) refuses that state as is.
    saved = make_scaler(torch.device("cpu"), enabled=True).state_dict()
    assert saved == {}
    enabled = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    with pytest.raises(RuntimeError, match="empty"):
        enabled.load_state_dict(saved)
    load_scaler_state(enabled, saved)
    assert enabled.get_scale() == 1024.0  # untouched: a fresh scaler
    model, opt, _ = _setup()
    loss = model(torch.ones(2, 4)).sum()
    optimizer_step(loss=loss, parameters=model.parameters(), optimizer=opt, scaler=enabled, clip_norm=1.0, step=0)


def test_saved_scaler_state_is_restored() -> None:
    source = torch.amp.GradScaler("cpu", enabled=True, init_scale=256.0, growth_interval=7)
    target = torch.amp.GradScaler("cpu", enabled=True)
    load_scaler_state(target, source.state_dict())
    assert target.get_scale() == 256.0 and target.get_growth_interval() == 7
    disabled = make_scaler(torch.device("cpu"), enabled=True)
    load_scaler_state(disabled, source.state_dict())  # a CUDA run's state resumed on CPU: ignored
    assert not disabled.is_enabled()
