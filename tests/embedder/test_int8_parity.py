"""int8 on the CPU that serves it: the weight range chosen for the CPU, the parity probe written at export,
checked when an int8 backend loads, and the fp32 fallback (with a warning) when the check fails; under
emulation of an AVX2-only CPU (qemu, `-m slow`), full-range weights saturate and are caught, 7-bit ones pass."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catalog.photo_sample import int8_photos
from embedder.backend import load_backend
from embedder.int8_parity import PROBE_FILE, check_parity, cpu_kind, probe_bytes, relative_error, sha256
from embedder.onnx_export import export_onnx, read_export_info, sidecar_path, variant_path
from embedder.quantize import QuantizeConfig, quantize_int8

REPO = Path(__file__).resolve().parents[2]


def _export(random_checkpoint: Path, synth_root: Path, dest: Path, *, reduce_range: bool | None) -> Path:
    ckpt = dest / "ck"
    shutil.copytree(random_checkpoint, ckpt)
    export_onnx(ckpt)
    cfg = QuantizeConfig(calibration_images=32, parity_images=8, probe_images=16, reduce_range=reduce_range)
    quantize_int8(ckpt, photos=int8_photos(synth_root, cfg), config=cfg)
    return ckpt


@pytest.fixture(scope="module")
def exported(random_checkpoint: Path, synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(random_checkpoint, synth_root, tmp_path_factory.mktemp("parity"), reduce_range=None)


def test_weight_range_is_chosen_for_the_cpu_and_recorded(exported: Path) -> None:
    q = read_export_info(exported, "int8").quantization
    assert q["reduce_range"] is ("vnni" not in cpu_kind())  # 8-bit weights only where VNNI computes them exactly
    assert q["chosen_for_cpu"] == cpu_kind()
    probe = q["probe"]
    assert probe["n"] == 16 and probe["split"] == "train"
    assert probe["sha256"] == sha256((exported / PROBE_FILE).read_bytes())
    assert set(probe["relative_error"]) == {"onnx-int8", "openvino-int8"}


@pytest.mark.parametrize("name", ["onnx-int8", "openvino-int8"])
def test_int8_backend_passes_its_probe_on_this_cpu(exported: Path, name: str) -> None:
    backend = load_backend(exported, backend=name, threads=1)
    assert backend.name == name and getattr(backend, "fallback_from", "?") is None
    probe = read_export_info(exported, "int8").quantization["probe"]
    report = check_parity(backend, exported / PROBE_FILE, expected_sha256=probe["sha256"])
    assert report.passed and report.n == 16 and report.relative_error <= report.bound
    assert report.min_cosine > 0.99


def test_probe_reference_is_exact_int8_arithmetic_and_this_cpu_is_held_to_it(
    random_checkpoint: Path, synth_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An 8-bit export's probe stores the quantised model in exact arithmetic, whatever CPU exported it: more
    accurate than the same model with 7-bit weights. A CPU whose kernels saturate (AVX2 without VNNI) then
    fails its own probe and serves fp32; a VNNI CPU serves int8."""
    with caplog.at_level(logging.WARNING, logger="embedder.quantize"):
        eight = _export(random_checkpoint, synth_root, tmp_path / "8", reduce_range=False)
    seven = read_export_info(_export(random_checkpoint, synth_root, tmp_path / "7", reduce_range=True), "int8")
    probe8 = read_export_info(eight, "int8").quantization["probe"]
    assert probe8["reference_relative_error"] < seven.quantization["probe"]["reference_relative_error"]
    with np.load(eight / PROBE_FILE) as z:
        assert relative_error(z["int8"], z["fp32"]) == pytest.approx(probe8["reference_relative_error"], abs=1e-4)
    vnni = "vnni" in cpu_kind()
    assert probe8["passes_on_this_cpu"] is vnni
    assert ("compute this export less accurately" in caplog.text) is not vnni
    for name, fp32_name in (("onnx-int8", "onnx"), ("openvino-int8", "openvino")):
        backend = load_backend(eight, backend=name, threads=1)
        assert backend.name == (name if vnni else fp32_name)


def _rewrite_probe(ckpt: Path, data: bytes) -> None:
    """Replace the probe and record its sha256 in the sidecar, as an export would."""
    (ckpt / PROBE_FILE).write_bytes(data)
    side = sidecar_path(variant_path(ckpt, "int8"))
    info = json.loads(side.read_text())
    info["quantization"]["probe"]["sha256"] = sha256(data)
    side.write_text(json.dumps(info))


@pytest.mark.parametrize(("name", "fp32_name"), [("onnx-int8", "onnx"), ("openvino-int8", "openvino")])
def test_failed_probe_falls_back_to_fp32_with_a_warning(
    exported: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, fp32_name: str
) -> None:
    ckpt = tmp_path / "ck"
    shutil.copytree(exported, ckpt)
    with np.load(ckpt / PROBE_FILE) as z:
        inputs, fp32 = z["inputs"], z["fp32"]
    # A probe claiming int8 matched fp32 exactly at export: this CPU's real int8 error is far above that.
    _rewrite_probe(ckpt, probe_bytes(inputs, fp32, fp32))
    with caplog.at_level(logging.WARNING, logger="embedder.backend"):
        backend = load_backend(ckpt, backend=name, threads=1)
    assert backend.name == fp32_name and getattr(backend, "fallback_from", None) == name
    assert "int8 is not accurate on this CPU" in caplog.text and "serving the fp32 export" in caplog.text
    reference = load_backend(ckpt, backend=fp32_name, threads=1)
    x = np.zeros((1, 3, backend.preprocess.image_size, backend.preprocess.image_size), dtype=np.float32)
    np.testing.assert_array_equal(backend.embed_batch(x), reference.embed_batch(x))


def test_tampered_probe_falls_back(exported: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ckpt = tmp_path / "ck"
    shutil.copytree(exported, ckpt)
    (ckpt / PROBE_FILE).write_bytes(b"not the probe")
    with caplog.at_level(logging.WARNING, logger="embedder.backend"):
        backend = load_backend(ckpt, backend="onnx-int8", threads=1)
    assert backend.name == "onnx" and "does not match the sha256" in caplog.text


def test_relative_error_is_scale_free_and_zero_for_identical() -> None:
    ref = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal((10, 8)).astype(np.float32) * 0.01
    assert relative_error(ref, ref) == 0.0
    assert relative_error(ref + noise, ref) == pytest.approx(relative_error(3 * (ref + noise), 3 * ref), rel=1e-5)


def test_probe_round_trips() -> None:
    inputs = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    emb = np.eye(2, 3, dtype=np.float32)
    with np.load(io.BytesIO(probe_bytes(inputs, emb, emb))) as z:
        assert z["inputs"].dtype == np.float16 and np.allclose(z["inputs"], inputs, atol=1e-2)
        assert np.array_equal(z["fp32"], emb)


_EMULATED = """
import json, sys
from pathlib import Path
import numpy as np
import onnxruntime as ort
import openvino as ov
from embedder.int8_parity import check_parity

ckpt = Path(sys.argv[1])
sha = json.loads((ckpt / "model.int8.onnx.json").read_text())["quantization"]["probe"]["sha256"]
model = str(ckpt / "model.int8.onnx")

class Ort:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    def embed_batch(self, x):
        return self.session.run(None, {"images": x})[0]

class Ov:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    def embed_batch(self, x):
        return np.asarray(self.compiled.create_infer_request().infer({0: x})[self.compiled.output(0)])

out = {}
for name, backend in (("onnx-int8", Ort()), ("openvino-int8", Ov())):
    out[name] = check_parity(backend, ckpt / "model.int8.probe.npz", expected_sha256=sha).to_dict()
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user not installed (apt-get install qemu-user)")
@pytest.mark.skipif("vnni" not in cpu_kind(), reason="needs a VNNI host to export full-range weights")
def test_emulated_avx2_cpu_catches_saturation_and_7_bit_weights_pass(
    random_checkpoint: Path, synth_root: Path, tmp_path: Path
) -> None:
    """On an emulated Haswell (AVX2, no AVX-512, no VNNI) a full-range export fails its parity probe (the
    check that sends load_backend to fp32); a 7-bit export passes. Minutes: every instruction is emulated
    (the script avoids importing torch for that reason). qemu-user shows the host's /proc/cpuinfo, so the
    kernels, not `cpu_kind()`, are what is emulated."""
    results = {}
    for bits, reduce_range in (("8", False), ("7", True)):
        ckpt = _export(random_checkpoint, synth_root, tmp_path / bits, reduce_range=reduce_range)
        proc = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c", _EMULATED, str(ckpt)],
                              capture_output=True, text=True, cwd=REPO, timeout=1500)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[bits] = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("onnx-int8", "openvino-int8"):
        assert results["7"][name]["passed"], results
        assert not results["8"][name]["passed"], results  # saturation: the error here far above the export's
