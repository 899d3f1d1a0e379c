from __future__ import annotations

import pytest
import torch

from embedder import BackboneWeightsError, EmbedderConfig, PreprocessConfig, build_embedder


def test_forward_shapes_and_explicit_normalisation() -> None:
    torch.manual_seed(0)
    model = build_embedder(EmbedderConfig(embed_dim=16)).eval()
    x = torch.randn(3, 3, 64, 64)
    raw = model(x)
    unit = model(x, normalize=True)
    assert raw.shape == (3, 16) and unit.shape == (3, 16)
    assert torch.allclose(unit.norm(dim=1), torch.ones(3), atol=1e-5)
    # Unnormalised output is a different tensor: normalisation is opt-in, not silently applied.
    assert not torch.allclose(raw.norm(dim=1), torch.ones(3), atol=1e-3)
    assert torch.allclose(model.encode_image(x, normalize=True), unit)


def test_forward_rejects_wrong_layout() -> None:
    model = build_embedder(EmbedderConfig(embed_dim=8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.randn(3, 64, 64))


@pytest.mark.parametrize("kwargs", [{"embed_dim": 1}, {"arch": "vgg"}])
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EmbedderConfig(**kwargs)  # type: ignore[arg-type]


def test_preprocess_config_roundtrip() -> None:
    cfg = PreprocessConfig(image_size=96)
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        PreprocessConfig(image_size=4)


def test_backbone_weights_from_state_dict_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    model = build_embedder(EmbedderConfig(embed_dim=8), backbone_weights=str(path))
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)


def test_backbone_weights_errors_are_clear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BackboneWeightsError, match="does not exist"):
        build_embedder(backbone_weights=str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(BackboneWeightsError, match="do not fit resnet18"):
        build_embedder(backbone_weights=str(bad))


def test_imagenet_weights_fail_clearly_offline(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # An empty hub dir and no network here: the error must say where to put the weights.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # torch.hub keeps its directory in a module global (what set_dir sets); monkeypatch restores it afterwards.
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    try:
        build_embedder(backbone_weights="imagenet")
    except BackboneWeightsError as e:
        assert "resnet18" in str(e) and "--backbone-weights none" in str(e)
    else:  # pragma: no cover - only where the weights are downloadable
        pytest.skip("ImageNet weights were downloadable here")
