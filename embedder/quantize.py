"""Static int8 quantisation of the fp32 export, calibrated on catalog photos: `CKPT/model.int8.onnx`.

The photos come in as paths (`Int8Photos`; `catalog.photo_sample.int8_photos` samples them from a dataset), so
the embedder reads no dataset and imports nothing of the project outside itself.

ONNX Runtime QDQ format, weights int8 per output channel, activations uint8 (the U8S8 pair that maps onto
VNNI `vpdpbusd`). Without VNNI the kernels use `vpmaddubsw`, whose int16 pair sums saturate with full-range
weights, so the weight range is chosen for the CPU: 8 bits with VNNI, 7 bits (`reduce_range`, which cannot
saturate and gives the same embeddings on every CPU) without, or as the caller says. MinMax int8
calibration (activation ranges) on the preprocessed calibration photos, e.g. a dataset's train split. The
projection and the final L2 normalisation stay in fp32. Parity with the fp32 export is measured on held-out
photos (a test split) before the artifact is installed and recorded in its sidecar, and a probe of calibration
photos is written beside it for the check every int8 backend runs when it loads (`embedder.int8_parity`).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedder.checkpoint import read_model_card
from embedder.config import PreprocessConfig
from embedder.files import write_atomic
from embedder.int8_parity import (
    PROBE_FILE,
    cpu_kind,
    error_bound,
    probe_bytes,
    probe_inputs,
    relative_error,
    sha256,
)
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
INT8_CALIBRATION_METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class Int8Photos:
    """The photos an int8 export is calibrated on and checked against, chosen by the caller."""

    calibration: Sequence[Path]  # activation ranges; the first `probe_images` also make the parity probe
    parity: Sequence[Path]  # held out (a test split): int8 vs fp32 per-item cosines before installing
    source: Mapping[str, Any] = field(default_factory=dict)  # where they come from, recorded in the sidecar
    parity_split: str = "test"

    def __post_init__(self) -> None:
        if not self.calibration or not self.parity:
            raise ValueError("int8 quantisation needs at least one calibration and one parity photo")


@dataclass(frozen=True)
class QuantizeConfig:
    """How to quantise (and, for `catalog.photo_sample.int8_photos`, how many photos of which dataset kind to
    draw with which seed); defaults are what docs/PERFORMANCE.md reports."""

    kind: str = "nondisjoint"
    calibration_images: int = 256
    parity_images: int = 128
    method: str = "minmax"
    per_channel: bool = True
    # 7-bit weights: u8 x s8 pair sums fit int16, so CPUs without VNNI cannot saturate, at ~45 % more int8
    # error than 8-bit weights, which VNNI computes exactly. None: 8-bit on a CPU with VNNI, else 7-bit.
    reduce_range: bool | None = None
    probe_images: int = 32
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.calibration_images, self.parity_images, self.batch_size, self.probe_images) < 1:
            raise ValueError("calibration_images, parity_images, probe_images and batch_size must be positive")
        if self.method not in INT8_CALIBRATION_METHODS:
            raise ValueError(f"calibration method must be one of {INT8_CALIBRATION_METHODS}, not {self.method!r}")


def load_batches(photos: Sequence[Path], cfg: PreprocessConfig, batch_size: int) -> Iterator[np.ndarray]:
    """Preprocessed (B, 3, S, S) float32 batches of the photos, through the one preprocessing path."""
    from embedder.image_io import load_image_file
    from embedder.preprocess import inputs_of

    for s in range(0, len(photos), batch_size):
        yield inputs_of([load_image_file(p) for p in photos[s : s + batch_size]], cfg)


class _Int8CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol over pre-loaded batches."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize_int8(checkpoint: Path | str, *, photos: Int8Photos, config: QuantizeConfig | None = None) -> ExportInfo:
    """Quantise the verified fp32 export of `checkpoint` on `photos` and install `model.int8.onnx` + sidecar."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cfg = config or QuantizeConfig()
    reduce_range = cfg.reduce_range if cfg.reduce_range is not None else "vnni" not in cpu_kind()
    checkpoint = Path(checkpoint)
    card = read_model_card(checkpoint)
    fp32_path, fp32_info = verify_export(checkpoint, "fp32", card)
    pre = card.config.preprocess
    calib = list(load_batches(photos.calibration, pre, cfg.batch_size))
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
            _Int8CalibrationReader(calib),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=cfg.per_channel,
            reduce_range=reduce_range,
            calibrate_method=method,
            # The projection (Gemm, 512 x d) is ~0.01% of the MACs; keeping it fp32 cut int8 error ~15%.
            op_types_to_quantize=["Conv", "Add", "Relu", "MaxPool", "GlobalAveragePool"],
            extra_options={"CalibTensorRangeSymmetric": False, "WeightSymmetric": True},
        )
        data = out.read_bytes()
        probe, probe_info = make_probe(fp32_path, out, photos.calibration[: cfg.probe_images], pre,
                                       split=str(photos.source.get("split", "calibration")))
    parity = measure_parity(fp32_path, data, photos.parity, pre, cfg, split=photos.parity_split)
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
        category_output=fp32_info.category_output,
        category_head_sha256=fp32_info.category_head_sha256,
        quantization={
            "format": "QDQ",
            "activations": "uint8 asymmetric, per tensor",
            "weights": "int8 symmetric, " + ("per channel" if cfg.per_channel else "per tensor")
            + (", 7-bit range (reduce_range)" if reduce_range else ", full 8-bit range"),
            "reduce_range": reduce_range,
            "chosen_for_cpu": cpu_kind() if cfg.reduce_range is None else "fixed by the caller",
            "method": cfg.method,
            **photos.source,
            "n_images": len(photos.calibration),
            "source_onnx_sha256": fp32_info.onnx_sha256,
            "probe": probe_info,
        },
    )
    log.info("int8 parity vs fp32 on %d test images: %s; probe: %s", int(parity["n"]), parity, probe_info)
    write_atomic(checkpoint / PROBE_FILE, probe)  # before the sidecar that names its sha256
    return write_variant(checkpoint, info, data)


def make_probe(
    fp32_path: Path, int8_path: Path, photos: Sequence[Path], pre: PreprocessConfig, *, split: str
) -> tuple[bytes, dict[str, Any]]:
    """The parity probe of `embedder.int8_parity` from calibration photos, its reference independent of this CPU.

    The probe's int8 embeddings come from the QDQ graph run without graph optimisation: ONNX Runtime then
    executes DequantizeLinear + float Conv, i.e. the quantised model in exact arithmetic, the same on every
    CPU (measured: 8-bit weights 0.164 there against 0.166 with VNNI's exact int32 kernels and 0.390 with
    AVX2's saturating ones). A CPU whose int8 kernels give a larger error than that reference allows then
    fails the check on load, the exporting CPU included, so an 8-bit export made on an AVX2 machine for a
    VNNI fleet keeps an honest probe. Both runtimes' own errors here are recorded beside it.
    """
    import onnxruntime as ort

    from embedder.backend import openvino_compiled
    from embedder.image_io import load_image_file
    from embedder.preprocess import inputs_of

    # What the probe stores, exactly (float16 inputs), so the check on load sees the same numbers.
    x = probe_inputs(inputs_of([load_image_file(p) for p in photos], pre)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    fp32 = ort.InferenceSession(str(fp32_path), opts, providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x})[0]
    ort_int8 = ort.InferenceSession(str(int8_path), opts, providers=["CPUExecutionProvider"]).run(
        None, {INPUT_NAME: x})[0]
    exact = ort.SessionOptions()
    exact.intra_op_num_threads = 2
    exact.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no int8 kernel fusion
    reference = ort.InferenceSession(str(int8_path), exact, providers=["CPUExecutionProvider"]).run(
        None, {INPUT_NAME: x})[0]
    compiled = openvino_compiled(int8_path, threads=2)
    ov_int8 = np.asarray(compiled.create_infer_request().infer({0: x})[compiled.output(0)], dtype=np.float32)
    ref_error = relative_error(reference, fp32)
    errors = {"onnx-int8": relative_error(ort_int8, fp32), "openvino-int8": relative_error(ov_int8, fp32)}
    bound = error_bound(ref_error)
    off = {name: round(err, 4) for name, err in errors.items() if err > bound}
    if off:
        log.warning("int8 kernels on this CPU (%s) compute this export less accurately than exact int8 arithmetic "
                    "(relative error %s > %.3f; exact %.3f): this machine will serve its fp32 export. With 8-bit "
                    "weights and no VNNI that is saturation; 7-bit weights (--weight-bits 7) avoid it.",
                    cpu_kind(), off, bound, ref_error)
    data = probe_bytes(x, fp32, reference)
    return data, {"file": PROBE_FILE, "sha256": sha256(data), "n": len(photos), "split": split,
                  "reference": "QDQ graph without optimisation (exact int8 arithmetic)",
                  "reference_relative_error": round(ref_error, 4),
                  "relative_error": {k: round(v, 4) for k, v in errors.items()}, "cpu": cpu_kind(),
                  "passes_on_this_cpu": not off}


def measure_parity(
    fp32_path: Path, int8_data: bytes, photos: Sequence[Path], pre: PreprocessConfig, cfg: QuantizeConfig, *,
    split: str
) -> dict[str, Any]:
    """Per-item cosine of int8 vs fp32 on held-out photos (e.g. a test split, never only calibration photos)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    ref = ort.InferenceSession(str(fp32_path), opts, providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(int8_data, opts, providers=["CPUExecutionProvider"])
    cos: list[np.ndarray] = []
    same_category: list[np.ndarray] = []  # with a category head: does int8 pick fp32's category?
    for batch in load_batches(photos, pre, cfg.batch_size):
        a = ref.run(None, {INPUT_NAME: batch})
        b = q.run(None, {INPUT_NAME: batch})
        cos.append(row_cosines(a[0], b[0]))
        if len(a) > 1:
            same_category.append(a[1].argmax(axis=1) == b[1].argmax(axis=1))
    c = np.concatenate(cos)
    out: dict[str, Any] = {
        "reference": "onnx fp32",
        "split": split,
        "n": len(c),
        "min_cosine": float(c.min()),
        "mean_cosine": float(c.mean()),
    }
    if same_category:
        out["category_agreement"] = float(np.concatenate(same_category).mean())
    return out
