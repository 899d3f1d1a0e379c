"""The shared embedder: model definition, preprocessing, image decoding and checkpoints.

Training, index and service import only from here; none of them restates the model or preprocessing.
"""

from embedder.checkpoint import CheckpointError, ModelCard, load_embedder, read_model_card, save_checkpoint
from embedder.config import EmbedderConfig, PreprocessConfig
from embedder.image_io import ImageDecodeError, ImageLimits, decode_image, load_image_file
from embedder.model import BackboneWeightsError, Embedder, build_embedder
from embedder.preprocess import preprocess_batch, preprocess_image

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
]
