"""int8 parity on the CPU that runs the model: a probe recorded at export, checked when a backend loads.

The same int8 graph computes differently on different CPUs: without VNNI, ONNX Runtime's and oneDNN's
u8 x s8 kernels (`vpmaddubsw`) add pairs of products in int16 and saturate, which on an AVX2-only machine
tripled the int8 error of full-range weights (docs/PERFORMANCE.md). Export therefore picks the weight range
for its CPU (`embedder.quantize`: 7 bits, which cannot saturate, without VNNI); and so that a model exported
on one kind of CPU cannot silently serve bad embeddings on another, export records a probe beside it: a few
calibration photos as model inputs (float16, already preprocessed, so the check needs neither the images nor
the preprocessing code, nor torch) with their fp32 embeddings and the int8 error measured then.
`check_parity` embeds the probe with the int8 backend on this CPU; `load_backend` falls back to the fp32
export of the same runtime, with a warning, when the error here is clearly larger than at export.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

PROBE_FILE = "model.int8.probe.npz"
# The int8 error here may exceed the export machine's by this factor plus this margin before the check fails.
# Saturation on an AVX2-only CPU raised it 2.2-2.5x for full-range weights (random-init worst case);
# kernel differences between runtimes or CPUs that do not saturate stay within a few per cent.
ERROR_GROWTH = 1.25
ERROR_MARGIN = 0.02


class _Embeds(Protocol):
    def embed_batch(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ParityReport:
    """int8 vs fp32 on the probe, on this CPU; `relative_error` = mean ||int8 - fp32|| / mean pairwise distance."""

    n: int
    min_cosine: float
    relative_error: float
    export_relative_error: float
    bound: float
    passed: bool
    cpu: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def relative_error(emb: np.ndarray, ref: np.ndarray) -> float:
    """Mean distance of each embedding to its reference, over the mean distance between reference items: how
    far quantisation moves an item compared with how far apart items are (what ranking depends on)."""
    err = float(np.linalg.norm(emb - ref, axis=1).mean())
    diff = np.linalg.norm(ref[:, None, :] - ref[None, :, :], axis=2)
    n = len(ref)
    spread = float(diff.sum() / max(1, n * n - n))
    return err / spread if spread > 0 else float("inf")


def error_bound(export_error: float) -> float:
    return ERROR_GROWTH * export_error + ERROR_MARGIN


def probe_inputs(batch: np.ndarray) -> np.ndarray:
    """Model inputs as the probe stores them (float16); embed exactly these, widened back to float32."""
    return np.asarray(batch, dtype=np.float16)


def probe_bytes(inputs: np.ndarray, fp32: np.ndarray, int8: np.ndarray) -> bytes:
    """The probe file: (n, 3, S, S) float16 model inputs, their fp32 and int8 embeddings at export."""
    buf = io.BytesIO()
    np.savez(buf, inputs=probe_inputs(inputs), fp32=np.asarray(fp32, dtype=np.float32),
             int8=np.asarray(int8, dtype=np.float32))
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cpu_kind() -> str:
    """"avx512-vnni", "avx-vnni", "avx2" or "other", from /proc/cpuinfo (the flags that pick int8 kernels)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    if "avx512_vnni" in flags:
        return "avx512-vnni"
    if "avx_vnni" in flags:
        return "avx-vnni"
    return "avx2" if "avx2" in flags else "other"


def check_parity(backend: _Embeds, probe: Path, *, expected_sha256: str) -> ParityReport:
    """Embed the probe's photos with `backend` (an int8 backend) and compare with the recorded fp32 embeddings.

    Raises ValueError when the probe file is not the one the export recorded.
    """
    data = probe.read_bytes()
    if sha256(data) != expected_sha256:
        raise ValueError(f"{probe}: does not match the sha256 its export recorded; re-export with --int8")
    with np.load(io.BytesIO(data)) as z:
        inputs, fp32, int8_then = z["inputs"], z["fp32"], z["int8"]
    got = backend.embed_batch(inputs.astype(np.float32))
    cos = np.sum(got * fp32, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(fp32, axis=1))
    err, then = relative_error(got, fp32), relative_error(int8_then, fp32)
    bound = error_bound(then)
    return ParityReport(n=len(inputs), min_cosine=round(float(cos.min()), 6), relative_error=round(err, 4),
                        export_relative_error=round(then, 4), bound=round(bound, 4),
                        passed=bool(np.isfinite(err) and err <= bound), cpu=cpu_kind())
