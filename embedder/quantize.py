"""Static int8 quantisation of the fp32 export, calibrated on catalog photos: `CKPT/model.int8.onnx`.

ONNX Runtime QDQ format, weights int8 per output channel, activations uint8 (the U8S8 pair that maps
onto AVX-512 VNNI `vpdpbusd`), MinMax calibration on preprocessed images from a Polyvore-format
dataset's train split. The projection and the final L2 normalisation stay in fp32. Parity with the fp32 export is
measured on held-out test-split images before the artifact is installed and recorded in its sidecar.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedder.checkpoint import read_model_card
from embedder.config import PreprocessConfig
from embedder.onnx_export import (
    INPUT_NAME,
    VARIANT_FILES,
    ExportError,
    ExportInfo,
    producer_versions,
    row_cosines,
    utc_now,
    verify_export,
    write_variant,
)

log = logging.getLogger(__name__)

# A quantised model this far from fp32 is broken (e.g. calibrated on the wrong preprocessing), not
# merely lossy: refuse to install it. The FITB/AUC parity bound (1 point) is checked by the benchmark.
INT8_MIN_MEAN_COSINE = 0.98
CALIBRATION_METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class QuantizeConfig:
    """How to calibrate; defaults are what docs/PERFORMANCE.md reports."""

    kind: str = "nondisjoint"
    calibration_images: int = 256
    parity_images: int = 128
    method: str = "minmax"
    per_channel: bool = True
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.calibration_images < 1 or self.parity_images < 1 or self.batch_size < 1:
            raise ValueError("calibration_images, parity_images and batch_size must be positive")
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, not {self.method!r}")


def sample_item_ids(dataset_root: Path | str, *, split: str, n: int, kind: str, seed: int) -> list[str]:
    """A seeded sample of the item ids used by one split's outfits (sorted first: order-independent)."""
    from catalog.errors import DatasetError
    from catalog.polyvore import PolyvoreDataset

    ds = PolyvoreDataset(dataset_root, kind=kind)
    ids = sorted(ds.outfit_item_ids((split,)))
    if not ids:
        raise DatasetError(Path(dataset_root), f"the {kind}/{split} split has no items to calibrate on")
    rng = np.random.default_rng(seed)
    take = rng.choice(len(ids), size=min(n, len(ids)), replace=False)
    return [ids[i] for i in sorted(take)]


def load_batches(
    dataset_root: Path | str, item_ids: Sequence[str], cfg: PreprocessConfig, batch_size: int
) -> Iterator[np.ndarray]:
    """Preprocessed (B, 3, S, S) float32 batches of the items' photos, through the one preprocessing path."""
    from embedder.image_io import load_image_file
    from embedder.preprocess import preprocess_batch

    root = Path(dataset_root)
    for s in range(0, len(item_ids), batch_size):
        images = [load_image_file(root / "images" / f"{i}.jpg") for i in item_ids[s : s + batch_size]]
        yield preprocess_batch(images, cfg).numpy()


class _CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol over pre-loaded batches."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {INPUT_NAME: batch}


def fingerprint_ids(item_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(item_ids).encode("utf-8")).hexdigest()[:16]


def quantize_int8(
    checkpoint: Path | str, *, dataset_root: Path | str, config: QuantizeConfig | None = None
) -> ExportInfo:
    """Quantise the verified fp32 export of `checkpoint` and install `model.int8.onnx` + sidecar."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cfg = config or QuantizeConfig()
    checkpoint = Path(checkpoint)
    card = read_model_card(checkpoint)
    fp32_path, fp32_info = verify_export(checkpoint, "fp32", card)
    pre = card.config.preprocess
    calib_ids = sample_item_ids(dataset_root, split="train", n=cfg.calibration_images, kind=cfg.kind, seed=cfg.seed)
    calib = list(load_batches(dataset_root, calib_ids, pre, cfg.batch_size))
    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[cfg.method]
    with tempfile.TemporaryDirectory(prefix=".quantize.", dir=checkpoint) as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        out = Path(tmp) / VARIANT_FILES["int8"]
        # Shape inference + graph cleanup first, as ORT's quantisation guide recommends.
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
        quantize_static(
            str(prepped),
            str(out),
            _CalibrationReader(calib),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=cfg.per_channel,
            calibrate_method=method,
            # The projection (Gemm, 512 x d) is ~0.01% of the MACs; keeping it fp32 cut int8 error ~15%.
            op_types_to_quantize=["Conv", "Add", "Relu", "MaxPool", "GlobalAveragePool"],
            extra_options={"CalibTensorRangeSymmetric": False, "WeightSymmetric": True},
        )
        data = out.read_bytes()
    parity = measure_parity(fp32_path, data, dataset_root, pre, cfg)
    if parity["mean_cosine"] < INT8_MIN_MEAN_COSINE:
        raise ExportError(
            f"int8 model is too far from fp32 (mean cosine {parity['mean_cosine']:.4f} < "
            f"{INT8_MIN_MEAN_COSINE}); check the calibration data, or serve with backend 'onnx'"
        )
    info = ExportInfo(
        variant="int8",
        onnx_file=VARIANT_FILES["int8"],
        onnx_sha256=hashlib.sha256(data).hexdigest(),
        weights_sha256=card.weights_sha256,
        embed_dim=card.config.embed_dim,
        preprocess=pre.to_dict(),
        opset=fp32_info.opset,
        created_at=utc_now(),
        producer=producer_versions(),
        parity=parity,
        quantization={
            "format": "QDQ",
            "activations": "uint8 asymmetric, per tensor",
            "weights": "int8 symmetric, " + ("per channel" if cfg.per_channel else "per tensor"),
            "method": cfg.method,
            "dataset": str(Path(dataset_root).resolve()),
            "kind": cfg.kind,
            "split": "train",
            "n_images": len(calib_ids),
            "item_ids_sha256": fingerprint_ids(calib_ids),
            "seed": cfg.seed,
            "source_onnx_sha256": fp32_info.onnx_sha256,
        },
    )
    log.info("int8 parity vs fp32 on %d test images: %s", int(parity["n"]), parity)
    return write_variant(checkpoint, info, data)


def measure_parity(
    fp32_path: Path, int8_data: bytes, dataset_root: Path | str, pre: PreprocessConfig, cfg: QuantizeConfig
) -> dict[str, Any]:
    """Per-item cosine of int8 vs fp32 on test-split photos (never the calibration split)."""
    import onnxruntime as ort

    ids = sample_item_ids(dataset_root, split="test", n=cfg.parity_images, kind=cfg.kind, seed=cfg.seed)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    ref = ort.InferenceSession(str(fp32_path), opts, providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(int8_data, opts, providers=["CPUExecutionProvider"])
    cos: list[np.ndarray] = []
    for batch in load_batches(dataset_root, ids, pre, cfg.batch_size):
        a = ref.run(None, {INPUT_NAME: batch})[0]
        b = q.run(None, {INPUT_NAME: batch})[0]
        cos.append(row_cosines(a, b))
    c = np.concatenate(cos)
    return {
        "reference": "onnx fp32",
        "split": "test",
        "n": len(c),
        "min_cosine": float(c.min()),
        "mean_cosine": float(c.mean()),
    }
