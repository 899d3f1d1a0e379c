"""The shared embedder: model definition, preprocessing, image decoding and checkpoints.

Training, index and service import only from here; none of them restates the model or preprocessing.
Names are resolved lazily (PEP 562) so torch-free submodules such as `embedder.backend_family` and
`embedder.image_io` can be imported without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "CheckpointError": "embedder.checkpoint",
    "ModelCard": "embedder.checkpoint",
    "load_embedder": "embedder.checkpoint",
    "read_model_card": "embedder.checkpoint",
    "save_checkpoint": "embedder.checkpoint",
    "EmbedderConfig": "embedder.config",
    "PreprocessConfig": "embedder.config",
    "ImageDecodeError": "embedder.image_io",
    "ImageLimits": "embedder.image_io",
    "decode_image": "embedder.image_io",
    "load_image_file": "embedder.image_io",
    "BackboneWeightsError": "embedder.model",
    "Embedder": "embedder.model",
    "build_embedder": "embedder.model",
    "preprocess_batch": "embedder.preprocess",
    "preprocess_image": "embedder.preprocess",
    "to_model_input": "embedder.preprocess",
}

__all__ = [
    "BackboneWeightsError",
    "CheckpointError",
    "Embedder",
    "EmbedderConfig",
    "ImageDecodeError",
    "ImageLimits",
    "ModelCard",
    "PreprocessConfig",
    "build_embedder",
    "decode_image",
    "load_embedder",
    "load_image_file",
    "preprocess_batch",
    "preprocess_image",
    "read_model_card",
    "save_checkpoint",
    "to_model_input",
]

if TYPE_CHECKING:
    from embedder.checkpoint import CheckpointError, ModelCard, load_embedder, read_model_card, save_checkpoint
    from embedder.config import EmbedderConfig, PreprocessConfig
    from embedder.image_io import ImageDecodeError, ImageLimits, decode_image, load_image_file
    from embedder.model import BackboneWeightsError, Embedder, build_embedder
    from embedder.preprocess import preprocess_batch, preprocess_image, to_model_input


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'embedder' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
