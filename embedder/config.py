"""Model and preprocessing configuration: stored inside every checkpoint so consumers never restate it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
ARCHITECTURES: tuple[str, ...] = ("resnet18",)


@dataclass(frozen=True)
class PreprocessConfig:
    """How a PIL image becomes a model input. 112 px follows the reference Polyvore code."""

    image_size: int = 112
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # Product photos sit on a white studio background: pad to square with white, never crop the product.
    pad_fill: tuple[int, int, int] = (255, 255, 255)

    def __post_init__(self) -> None:
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be within 16..1024, not {self.image_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 channels and std must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        return cls(
            image_size=int(d["image_size"]),
            mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
            pad_fill=tuple(int(x) for x in d.get("pad_fill", (255, 255, 255))),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class EmbedderConfig:
    """Architecture of the embedder: backbone + linear projection to `embed_dim`."""

    arch: str = "resnet18"
    embed_dim: int = 64
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {ARCHITECTURES}, not {self.arch!r}")
        if not 2 <= self.embed_dim <= 4096:
            raise ValueError(f"embed_dim must be within 2..4096, not {self.embed_dim}")

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "embed_dim": self.embed_dim, "preprocess": self.preprocess.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbedderConfig:
        return cls(
            arch=str(d["arch"]),
            embed_dim=int(d["embed_dim"]),
            preprocess=PreprocessConfig.from_dict(d["preprocess"]),
        )
