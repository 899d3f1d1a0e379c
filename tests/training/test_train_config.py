from __future__ import annotations

import pytest

from training.config import PRESETS, ConfigError, TrainConfig, preset


def test_every_preset_is_valid_and_paper_keeps_the_paper_defaults() -> None:
    for name in PRESETS:
        assert preset(name).preset == name
    p = preset("paper")
    assert (p.margin, p.lambda_ss, p.lambda_pseudo, p.lr, p.batch_size, p.unlabeled_batch, p.epochs) == (
        0.4, 0.1, 1.0, 5e-5, 256, 1024, 10)
    assert p.embed_dim == 64


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labeled_fraction": 0.0}, "labeled-fraction"),
        ({"labeled_fraction": 1.2}, "labeled-fraction"),
        ({"margin": -1.0}, "margin"),
        ({"batch_size": 0}, "batch-size"),
        ({"use_l": False, "use_ss": False, "use_pseudo": False}, "at least one loss"),
        ({"device": "tpu"}, "device"),
        ({"backbone_weights": "imagenet21k"}, "backbone-weights"),
        ({"no_such_option": 1}, "unknown training options"),
    ],
)
def test_bad_options_raise_config_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig().replace(**changes)


def test_unknown_preset_and_roundtrip() -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("fast")
    c = preset("smoke", seed=3, use_ss=False)
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert c.losses_label() == "L_l+L_pseudo"


def test_custom_preset_is_the_defaults_and_new_options_validate() -> None:
    from training.config import ConfigError, TrainConfig, preset

    assert preset("custom", lr=0.01) == TrainConfig(lr=0.01, preset="custom")
    for bad in ({"lr_schedule": "step"}, {"acceptance": "maybe"}, {"ema_decay": 1.0}, {"ratio_threshold": 0.0},
                {"queue_size": -1}, {"warmup_steps": -1}):
        with pytest.raises(ConfigError):
            preset("custom", **bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("fast")
