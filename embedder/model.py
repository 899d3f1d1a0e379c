"""The one model definition: ResNet-18 backbone + fully-connected projection to a d-dim embedding."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from embedder.config import EmbedderConfig


class BackboneWeightsError(RuntimeError):
    """Requested backbone weights cannot be loaded (not cached, no network, or a bad file)."""


class Embedder(nn.Module):
    """Maps a batch of preprocessed images (N, 3, H, W) to embeddings (N, embed_dim).

    Compatibility is Euclidean distance between embeddings; L2 normalisation is an explicit choice of
    the caller (`normalize=True`), as in open_clip's `encode_image`.
    """

    def __init__(self, config: EmbedderConfig) -> None:
        super().__init__()
        self.config = config
        backbone = torchvision.models.resnet18(weights=None)
        feat_dim = backbone.fc.in_features
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.projection = nn.Linear(feat_dim, config.embed_dim)

    def forward(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        return self.embed_from_trunk(self.trunk(images), normalize=normalize)

    def trunk(self, images: torch.Tensor, upto: int = 3) -> torch.Tensor:
        """The backbone up to layer `upto` (2 or 3): the maps the embedding and a category head share."""
        if upto not in (2, 3):
            raise ValueError(f"the trunk ends at layer2 or layer3, not layer{upto}")
        b = self.backbone
        x = b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(images))))))
        return b.layer3(x) if upto == 3 else x

    def embed_from_trunk(self, maps: torch.Tensor, *, normalize: bool) -> torch.Tensor:
        """layer4 + pooling + projection on the trunk's maps: `forward` is exactly trunk then this."""
        b = self.backbone
        z = self.projection(torch.flatten(b.avgpool(b.layer4(maps)), 1))
        return F.normalize(z, dim=-1) if normalize else z

    def encode_image(self, images: torch.Tensor, *, normalize: bool) -> torch.Tensor:
        return self.forward(images, normalize=normalize)


def load_backbone_weights(model: Embedder, weights: str) -> None:
    """`none` keeps random init; `imagenet` uses torchvision's weights API; otherwise a state_dict path."""
    if weights == "none":
        return
    if weights == "imagenet":
        try:
            state = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as e:  # urllib/OSError/hash errors all mean: not cached and not downloadable
            hub = torch.hub.get_dir()
            raise BackboneWeightsError(
                f"ImageNet weights for resnet18 are not cached in {hub}/checkpoints and could not be "
                f"downloaded ({type(e).__name__}: {e}). Place resnet18-f37072fd.pth there, pass a "
                "state_dict path, or use --backbone-weights none."
            ) from e
    else:
        path = Path(weights)
        if not path.is_file():
            raise BackboneWeightsError(f"backbone weights file {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise BackboneWeightsError(f"{path} is not a readable torch state_dict: {e}") from e
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # the projection replaces fc
    try:
        missing, unexpected = model.backbone.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches raise even when strict=False
        raise BackboneWeightsError(f"backbone weights do not fit resnet18: {e}") from e
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise BackboneWeightsError(
            f"backbone weights do not fit resnet18: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def build_embedder(config: EmbedderConfig | None = None, *, backbone_weights: str = "none") -> Embedder:
    model = Embedder(config or EmbedderConfig())
    load_backbone_weights(model, backbone_weights)
    return model
