"""Inference backends behind one interface, chosen by setting: `torch`, `onnx`, `onnx-int8`, `openvino`,
`openvino-int8`.

The index job and the service embed through `load_backend`, and the index manifest records the backend
name so an index is only served by a compatible backend (`embedder.backend_family`, docs/PERFORMANCE.md).
`onnx*` and `openvino*` run the same verified exports beside the checkpoint (`outfit-compat export`) on
ONNX Runtime's CPU provider or OpenVINO's CPU plugin (the faster one here, docs/PERFORMANCE.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from PIL import Image

from embedder.backend_family import BACKENDS
from embedder.category_head import CategorisingEmbedder, CategoryHead, load_category_head
from embedder.checkpoint import ModelCard, load_embedder
from embedder.config import PreprocessConfig
from embedder.model import Embedder
from embedder.preprocess import inputs_of, to_model_input

if TYPE_CHECKING:
    from embedder.onnx_export import ExportInfo

ONNX_VARIANT: dict[str, str] = {"onnx": "fp32", "onnx-int8": "int8", "openvino": "fp32", "openvino-int8": "int8"}
FP32_OF: dict[str, str] = {"onnx-int8": "onnx", "openvino-int8": "openvino"}
log = logging.getLogger(__name__)


class EmbeddingBackend(Protocol):
    """Embeds preprocessed batches; returns L2-normalised float32 embeddings."""

    name: str
    card: ModelCard

    @property
    def preprocess(self) -> PreprocessConfig: ...

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 preprocessed images -> (N, d) normalised float32 embeddings."""
        ...

    @property
    def has_categories(self) -> bool:
        """Whether the model carries the checkpoint's category head (embedder/category_head.py)."""
        ...

    def embed_with_categories(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings and, with a category head, (N, C) category probabilities from the same forward pass."""
        ...


class TorchBackend:
    """Plain PyTorch eager inference (the reference every faster backend is compared with)."""

    name = "torch"

    def __init__(
        self, model: Embedder, card: ModelCard, *, device: str = "cpu", head: CategoryHead | None = None
    ) -> None:
        self.model = model.to(device).eval()
        self.card = card
        self.device = torch.device(device)
        self.category_head = head  # the service takes it from here rather than reading the weights twice
        branch = None if head is None else head.branch
        if head is not None and branch is None:
            raise ValueError("the torch backend needs the category head's weights (load it with_weights=True)")
        self._both = None if branch is None else CategorisingEmbedder(self.model, branch).to(device).eval()

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.card.config.preprocess

    @property
    def has_categories(self) -> bool:
        return self._both is not None

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        return torch_embed_batch(self.model, batch, device=self.device)

    @torch.inference_mode()
    def embed_with_categories(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self._both is None:
            return self.embed_batch(batch), None
        emb, probs = self._both(_torch_input(batch, self.device))
        return emb.float().cpu().numpy(), probs.float().cpu().numpy()


@torch.inference_mode()
def torch_embed_batch(model: Embedder, batch: np.ndarray, *, device: torch.device | None = None) -> np.ndarray:
    """The one torch forward for a preprocessed batch: (N, 3, S, S) -> (N, d) L2-normalised float32.

    Used by TorchBackend and by training's evaluation (which passes its model in eval mode).
    """
    out: np.ndarray = model(_torch_input(batch, device or next(model.parameters()).device), normalize=True
                            ).float().cpu().numpy()
    return out


def _torch_input(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)


def embed_batches(embed_batch: Callable[[np.ndarray], np.ndarray], batches: Iterable[np.ndarray], dim: int
                  ) -> np.ndarray:
    """Each preprocessed batch through one backend call, rows stacked: (N, dim), (0, dim) for no batches."""
    out = [embed_batch(b) for b in batches]
    return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)


def as_model_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """Contiguous float32 (N, 3, size, size) or a ValueError saying what the exported graph expects."""
    x = np.ascontiguousarray(batch, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (3, size, size):
        raise ValueError(f"expected a (N, 3, {size}, {size}) batch, got {x.shape}")
    return x


class OnnxBackend:
    """ONNX Runtime CPU inference of a verified export (`model.onnx` or `model.int8.onnx`)."""

    def __init__(
        self, session: Any, card: ModelCard, *, name: str, input_name: str, output_name: str,
        category_output: str = "",
    ) -> None:
        self.session = session
        self.card = card
        self.name = name
        # The int8 backend this one replaces after a failed parity check (see load_backend), else None.
        self.fallback_from: str | None = None
        self._input = input_name
        self._outputs = [output_name]
        self._both = [output_name, category_output] if category_output else None

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.card.config.preprocess

    @property
    def has_categories(self) -> bool:
        return self._both is not None

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        x = as_model_batch(batch, self.preprocess.image_size)
        out: np.ndarray = self.session.run(self._outputs, {self._input: x})[0]
        return out

    def embed_with_categories(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self._both is None:
            return self.embed_batch(batch), None
        emb, probs = self.session.run(self._both, {self._input: as_model_batch(batch, self.preprocess.image_size)})
        return emb, probs


def onnx_session(path: Path, *, threads: int | None = None) -> Any:
    """A CPU session tuned for this workload: full graph optimisation, sequential execution."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OpenVinoBackend:
    """OpenVINO CPU-plugin inference of a verified export; one infer request, serialised by a lock."""

    def __init__(self, compiled: Any, card: ModelCard, *, name: str, categories: bool = False) -> None:
        self.card = card
        self.name = name
        self.fallback_from: str | None = None  # as OnnxBackend's
        self._request = compiled.create_infer_request()
        self._port = compiled.output(0)
        self._category_port = compiled.output(1) if categories else None
        self._lock = threading.Lock()

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.card.config.preprocess

    @property
    def has_categories(self) -> bool:
        return self._category_port is not None

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.embed_with_categories(batch)[0]

    def embed_with_categories(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = as_model_batch(batch, self.preprocess.image_size)
        with self._lock:
            # Copy: the request reuses its output buffers on the next call.
            out = self._request.infer({0: x})
            emb = np.array(out[self._port], dtype=np.float32, copy=True)
            if self._category_port is None:
                return emb, None
            return emb, np.array(out[self._category_port], dtype=np.float32, copy=True)


def openvino_compiled(path: Path, *, threads: int | None = None) -> Any:
    """Compile for the CPU plugin: latency hint, fp32 wherever the graph is not int8 (no implicit bf16)."""
    import openvino as ov

    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    return core.compile_model(core.read_model(str(path)), "CPU", config)


def embed_one(backend: EmbeddingBackend, image: Image.Image) -> np.ndarray:
    """The upload fast path: one RGB PIL image -> (d,) normalised embedding, no torch tensors involved."""
    return backend.embed_batch(to_model_input(image, backend.preprocess)[None])[0]


def embed_pil(backend: EmbeddingBackend, images: Sequence[Image.Image], *, batch_size: int = 64) -> np.ndarray:
    """RGB PIL images -> (N, d) normalised embeddings through any backend."""
    batches = (inputs_of(images[s : s + batch_size], backend.preprocess) for s in range(0, len(images), batch_size))
    return embed_batches(backend.embed_batch, batches, backend.card.config.embed_dim)


def load_backend(
    checkpoint: Path | str, *, backend: str = "torch", device: str = "cpu", threads: int | None = None
) -> EmbeddingBackend:
    """Load a checkpoint for inference with the named backend.

    ONNX backends verify the weights against the card and the export against the weights, so a stale
    export (re-trained checkpoint, old model.onnx) raises ExportError naming the command that fixes it.
    `threads` sets the ONNX Runtime / OpenVINO thread pool (default: torch's thread count).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "torch":
        model, card = load_embedder(checkpoint, device=device)
        head = load_category_head(checkpoint, model_version=card.model_version)
        return TorchBackend(model, card, device=device, head=head)
    if device != "cpu":
        raise ValueError(f"backend {backend!r} runs on the CPU only; use backend='torch' for device {device!r}")
    from embedder.onnx_export import verify_export

    card = verified_card(checkpoint)
    path, info = verify_export(checkpoint, ONNX_VARIANT[backend], card)
    runtime = _runtime_backend(backend, path, card, info, threads)
    if ONNX_VARIANT[backend] == "int8" and not int8_parity_holds(runtime, Path(checkpoint), info.quantization):
        path, info = verify_export(checkpoint, "fp32", card)
        runtime = _runtime_backend(FP32_OF[backend], path, card, info, threads)
        runtime.fallback_from = backend
    return runtime


def _runtime_backend(
    name: str, path: Path, card: ModelCard, info: ExportInfo, threads: int | None
) -> OnnxBackend | OpenVinoBackend:
    if name.startswith("openvino"):
        return OpenVinoBackend(openvino_compiled(path, threads=threads), card, name=name,
                               categories=bool(info.category_output))
    return OnnxBackend(onnx_session(path, threads=threads), card, name=name, input_name=info.input_name,
                       output_name=info.output_name, category_output=info.category_output)


def int8_parity_holds(model: EmbeddingBackend, checkpoint: Path, quantization: dict[str, Any]) -> bool:
    """The export's parity probe on this CPU (`embedder.int8_parity`); False, with a warning, when it fails."""
    from embedder.int8_parity import check_parity

    probe = quantization.get("probe")
    if not probe:
        log.warning("%s: the int8 export has no parity probe (made before probes existed), so int8 accuracy on "
                    "this CPU is unchecked; re-export with `outfit-compat export CKPT --int8 --data DATASET`",
                    checkpoint)
        return True
    try:
        report = check_parity(model, checkpoint / str(probe["file"]), expected_sha256=str(probe["sha256"]))
    except (OSError, ValueError, KeyError) as e:
        log.warning("%s: int8 parity probe unreadable (%s); serving the fp32 export instead of %s",
                    checkpoint, e, model.name)
        return False
    if not report.passed:
        log.warning(
            "%s: int8 is not accurate on this CPU (%s): relative error %.3f > %.3f (%.3f at export); serving the "
            "fp32 export instead of %s (slower, same rankings as the model). Re-export int8 on this machine "
            "or serve an fp32 backend on purpose.", checkpoint, report.cpu, report.relative_error, report.bound,
            report.export_relative_error, model.name)
        return False
    log.info("%s: int8 parity on this CPU (%s): %s", checkpoint, report.cpu, report.to_dict())
    return True


def verified_card(checkpoint: Path | str) -> ModelCard:
    """The card, after checking the safetensors file still matches it (the export is tied to that hash)."""
    from embedder.checkpoint import WEIGHTS_FILE, CheckpointError, read_model_card
    from embedder.files import sha256_file

    card = read_model_card(checkpoint)
    weights = Path(checkpoint) / WEIGHTS_FILE
    if not weights.is_file() or sha256_file(weights) != card.weights_sha256:
        raise CheckpointError(f"{weights}: missing or does not match the model card's sha256")
    return card
