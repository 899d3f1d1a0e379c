"""ONNX export of a checkpoint: `CKPT/model.onnx` (fp32) beside the weights, with a checked sidecar.

The exported graph takes the preprocessed batch the torch model takes, `images` (N, 3, S, S) float32
normalised with the card's mean/std, and returns `embeddings` (N, d) float32 already L2-normalised, so
every backend honours one contract. The sidecar (`model.onnx.json`) records the ONNX file's sha256,
the checkpoint weights' sha256 it was exported from and the preprocessing, so a stale or swapped export
is refused on load instead of silently serving another model's embeddings. `model_card.json` is never
touched: the weights hash keeps meaning "the safetensors file".
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedder.category_head import CategorisingEmbedder, head_sha256, load_category_head
from embedder.checkpoint import CheckpointError, ModelCard, read_model_card
from embedder.config import PreprocessConfig
from embedder.files import sha256_file, write_atomic
from embedder.model import Embedder

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
CATEGORY_OUTPUT = "category_probs"  # second output, only when the checkpoint has a category head
DEFAULT_OPSET = 18
# Artifact file per exported variant; the sidecar is `<file>.json`.
VARIANT_FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


# Parity bounds (issue 7): every item's fp32-export embedding within cosine 0.999 of torch's.
FP32_MIN_COSINE = 0.999
FP32_MAX_PROBABILITY_GAP = 1e-3  # the category head's probabilities, export vs torch


class ExportError(CheckpointError):
    """An ONNX export is missing, corrupt, stale (exported from other weights) or failed parity."""


@dataclass(frozen=True)
class ExportInfo:
    """The sidecar of one exported variant: what it is, where it came from, how to feed it."""

    variant: str
    onnx_file: str
    onnx_sha256: str
    weights_sha256: str
    embed_dim: int
    preprocess: dict[str, Any]
    opset: int
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    input_contract: str = "float32 (N, 3, S, S), RGB, padded to square, resized to S, (x/255 - mean) / std"
    output_contract: str = "float32 (N, d), L2-normalised"
    # With a category head: the second output's name and the head's sha256 ("" without one).
    category_output: str = ""
    category_head_sha256: str = ""
    created_at: str = ""
    producer: dict[str, str] = field(default_factory=dict)
    # Parity against the source (torch for fp32, the fp32 export for int8) measured when it was written.
    parity: dict[str, Any] = field(default_factory=dict)
    # int8 only: how it was calibrated (dataset fingerprint, image count, method, format).
    quantization: dict[str, Any] = field(default_factory=dict)
    format: int = EXPORT_FORMAT

    @property
    def model_version(self) -> str:
        return self.weights_sha256[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExportInfo:
        if d.get("format") != EXPORT_FORMAT:
            raise ValueError(f"export sidecar format {d.get('format')!r} is not supported (expected {EXPORT_FORMAT})")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


class NormalizedEmbedder(nn.Module):
    """The exported function: images -> L2-normalised embeddings (normalisation inside the graph)."""

    def __init__(self, model: Embedder) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images, normalize=True)


def variant_path(checkpoint: Path | str, variant: str) -> Path:
    if variant not in VARIANT_FILES:
        raise ValueError(f"unknown export variant {variant!r}; choose one of {tuple(VARIANT_FILES)}")
    return Path(checkpoint) / VARIANT_FILES[variant]


def sidecar_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")



def write_variant(checkpoint: Path, info: ExportInfo, onnx_bytes: bytes) -> ExportInfo:
    """Install an ONNX model + sidecar. The sidecar goes last, so a crash leaves a detectably stale pair."""
    path = variant_path(checkpoint, info.variant)
    write_atomic(path, onnx_bytes)
    write_atomic(sidecar_path(path), json.dumps(info.to_dict(), indent=2, sort_keys=True).encode("utf-8"))
    return info


def producer_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_export_info(checkpoint: Path | str, variant: str) -> ExportInfo:
    """Read a variant's sidecar (cheap: no hashing); raises ExportError saying how to fix a missing one."""
    path = variant_path(checkpoint, variant)
    side = sidecar_path(path)
    if not path.is_file() or not side.is_file():
        hint = "outfit-compat export CKPT" + (" --int8 --data DATASET" if variant == "int8" else "")
        raise ExportError(f"{path}: no {variant} ONNX export with its sidecar; create it with `{hint}`")
    try:
        return ExportInfo.from_dict(json.loads(side.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise ExportError(f"{side}: export sidecar is malformed ({type(e).__name__}: {e})") from e


def verify_export(checkpoint: Path | str, variant: str, card: ModelCard | None = None) -> tuple[Path, ExportInfo]:
    """Check that the export belongs to this checkpoint's weights and is intact; return its path and info."""
    card = card or read_model_card(checkpoint)
    path = variant_path(checkpoint, variant)
    info = read_export_info(checkpoint, variant)
    if info.weights_sha256 != card.weights_sha256:
        raise ExportError(
            f"{path} is stale: exported from weights {info.model_version}, but the checkpoint holds "
            f"{card.model_version}; re-run `outfit-compat export {checkpoint}`"
        )
    try:
        same_preprocess = PreprocessConfig.from_dict(info.preprocess) == card.config.preprocess
    except (KeyError, TypeError, ValueError):
        same_preprocess = False
    if not same_preprocess or info.embed_dim != card.config.embed_dim:
        raise ExportError(f"{path}: preprocessing or embedding size differs from the model card; re-export it")
    head = head_sha256(checkpoint)
    if info.category_head_sha256 != head:
        def name(sha: str) -> str:
            return f"category head {sha[:16]}" if sha else "no category head"
        raise ExportError(f"{path} is stale: exported with {name(info.category_head_sha256)}, but the checkpoint "
                          f"has {name(head)}; re-run `outfit-compat export {checkpoint}`")
    actual = sha256_file(path)
    if actual != info.onnx_sha256:
        raise ExportError(f"{path}: sha256 {actual[:16]}… does not match its sidecar; the file is corrupt or replaced")
    return path, info


def export_onnx(checkpoint: Path | str, *, opset: int = DEFAULT_OPSET, parity_images: int = 16) -> ExportInfo:
    """Export the checkpoint's embedder to `CKPT/model.onnx` with a dynamic batch axis.

    Parity with torch is checked on seeded random inputs before anything is installed; an export whose
    per-item cosine to torch is below `FP32_MIN_COSINE` is refused.
    """
    import numpy as np

    from embedder.checkpoint import load_embedder

    checkpoint = Path(checkpoint)
    model, card = load_embedder(checkpoint)
    head = load_category_head(checkpoint, model_version=card.model_version)
    size = card.config.preprocess.image_size
    branch = None if head is None else head.branch
    assert head is None or branch is not None  # loaded with its weights (the default)
    wrapper: nn.Module = NormalizedEmbedder(model) if branch is None else CategorisingEmbedder(model, branch)
    wrapper.eval()
    outputs = [OUTPUT_NAME] if head is None else [OUTPUT_NAME, CATEGORY_OUTPUT]
    data = onnx_bytes_from_module(wrapper, image_size=size, opset=opset, output_names=outputs)

    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(parity_images, 3, size, size, generator=gen)
    with torch.inference_mode():
        expected = [t.numpy() for t in ((wrapper(probe),) if head is None else wrapper(probe))]
    got = run_onnx_bytes(data, probe.numpy(), outputs=outputs)
    cos = row_cosines(expected[0], got[0])
    if float(cos.min()) < FP32_MIN_COSINE:
        raise ExportError(f"fp32 export failed parity: min cosine to torch {cos.min():.6f} < {FP32_MIN_COSINE}")
    category_gap = float(np.abs(expected[1] - got[1]).max()) if head is not None else 0.0
    if category_gap > FP32_MAX_PROBABILITY_GAP:
        raise ExportError(f"fp32 export failed parity: category probabilities differ from torch by {category_gap:.2e}")
    info = ExportInfo(
        variant="fp32",
        onnx_file=VARIANT_FILES["fp32"],
        onnx_sha256=_sha256_bytes(data),
        weights_sha256=card.weights_sha256,
        embed_dim=card.config.embed_dim,
        preprocess=card.config.preprocess.to_dict(),
        opset=opset,
        created_at=utc_now(),
        producer=producer_versions(),
        parity={
            "reference": "torch",
            "n": len(cos),
            "min_cosine": float(cos.min()),
            "mean_cosine": float(np.mean(cos)),
            **({"max_category_probability_gap": category_gap} if head is not None else {}),
        },
        category_output=CATEGORY_OUTPUT if head is not None else "",
        category_head_sha256=head.sha256 if head is not None else "",
    )
    return write_variant(checkpoint, info, data)


def row_cosines(a: Any, b: Any) -> Any:
    """Per-row cosine similarity of two (N, d) arrays."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def onnx_bytes_from_module(
    module: Any, *, image_size: int, opset: int, output_names: list[str] | None = None
) -> bytes:
    """Serialize with the torch.export-based exporter, batch axis dynamic, weights embedded (no .data file)."""
    example = torch.zeros(2, 3, image_size, image_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # The exporter prints progress lines to stdout; keep stdout clean for the CLI's JSON report.
    with contextlib.redirect_stdout(io.StringIO()) as chatter:
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT_NAME],
            output_names=output_names or [OUTPUT_NAME],
            dynamic_shapes={"images": {0: batch}},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    log.debug("torch.onnx.export: %s", chatter.getvalue())
    if program is None:  # only the legacy exporter returns None, and it writes to a file instead
        raise ExportError("torch.onnx.export returned no program")
    import onnx

    return bytes(onnx.ModelProto.SerializeToString(program.model_proto))


def run_onnx_bytes(data: bytes, batch: Any, *, outputs: list[str] | None = None) -> Any:
    """Run a serialized model once on the CPU (export-time checks; serving uses embedder.backend): the
    embeddings, or the list of the named `outputs`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    if outputs is not None:
        return sess.run(outputs, {INPUT_NAME: batch})
    return sess.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]


def _sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
