"""fp32 ONNX export: parity with torch, dynamic batch, sidecar checks, the `onnx` backend and the
backend-compatibility rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedder import build_embedder, load_embedder, save_checkpoint
from embedder.backend import BACKENDS, embed_one, embed_pil, load_backend
from embedder.backend_family import BackendMismatchError, check_backend_compatible
from embedder.checkpoint import CheckpointError
from embedder.image_io import load_image_file
from embedder.onnx_export import (
    FP32_MIN_COSINE,
    ExportError,
    ExportInfo,
    export_onnx,
    read_export_info,
    row_cosines,
    sidecar_path,
    variant_path,
)


@pytest.fixture(scope="module")
def exported(random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the shared random checkpoint with its fp32 export (never mutate the shared one)."""
    ckpt = tmp_path_factory.mktemp("onnx") / "ck"
    shutil.copytree(random_checkpoint, ckpt)
    export_onnx(ckpt)
    return ckpt


@pytest.fixture()
def scratch(exported: Path, tmp_path: Path) -> Path:
    """A per-test copy of the exported checkpoint for tests that damage it."""
    ckpt = tmp_path / "ck"
    shutil.copytree(exported, ckpt)
    return ckpt


def synth_images(root: Path, n: int) -> list[Image.Image]:
    paths = sorted((root / "images").glob("*.jpg"))[:n]
    return [load_image_file(p) for p in paths]


def test_export_writes_model_and_sidecar_tied_to_the_weights(exported: Path) -> None:
    _, card = load_embedder(exported)
    info = read_export_info(exported, "fp32")
    assert variant_path(exported, "fp32").is_file()
    assert info.weights_sha256 == card.weights_sha256 and info.model_version == card.model_version
    assert info.embed_dim == card.config.embed_dim
    assert info.preprocess["image_size"] == card.config.preprocess.image_size
    assert info.parity["min_cosine"] >= FP32_MIN_COSINE
    # The weights hash in the card keeps meaning "model.safetensors".
    assert json.loads((exported / "model_card.json").read_text())["weights_sha256"] == card.weights_sha256


FP32_EXPORT_BACKENDS = ("onnx", "openvino")


@pytest.mark.parametrize("name", FP32_EXPORT_BACKENDS)
def test_export_matches_torch_per_item_on_real_preprocessed_images(exported: Path, synth_root: Path, name: str) -> None:
    images = synth_images(synth_root, 40)
    ref = embed_pil(load_backend(exported, backend="torch"), images, batch_size=16)
    backend = load_backend(exported, backend=name, threads=1)
    got = embed_pil(backend, images, batch_size=16)
    assert backend.name == name and got.dtype == np.float32 and got.shape == ref.shape
    assert row_cosines(ref, got).min() >= FP32_MIN_COSINE
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", FP32_EXPORT_BACKENDS)
@pytest.mark.parametrize("batch", [1, 3, 17])
def test_batch_axis_is_dynamic(exported: Path, batch: int, name: str) -> None:
    size = load_backend(exported, backend="onnx").preprocess.image_size
    x = np.random.default_rng(batch).standard_normal((batch, 3, size, size)).astype(np.float32)
    model, _ = load_embedder(exported)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x), normalize=True).numpy()
    backend = load_backend(exported, backend=name, threads=1)
    got = backend.embed_batch(x)
    again = backend.embed_batch(x[:1])  # a later call must not overwrite an earlier result
    assert got.shape == ref.shape and again.shape == (1, ref.shape[1])
    assert row_cosines(ref, got).min() >= FP32_MIN_COSINE


@pytest.mark.parametrize("name", FP32_EXPORT_BACKENDS)
def test_embed_one_fast_path_equals_batched_path(exported: Path, synth_root: Path, name: str) -> None:
    backend = load_backend(exported, backend=name, threads=1)
    images = synth_images(synth_root, 3)
    batched = embed_pil(backend, images)
    for k, img in enumerate(images):
        np.testing.assert_allclose(embed_one(backend, img), batched[k], atol=1e-5)


@pytest.mark.parametrize("name", FP32_EXPORT_BACKENDS)
def test_wrong_input_shape_is_refused(exported: Path, name: str) -> None:
    backend = load_backend(exported, backend=name)
    with pytest.raises(ValueError, match=r"expected a \(N, 3, 64, 64\) batch"):
        backend.embed_batch(np.zeros((2, 3, 32, 32), dtype=np.float32))


def test_missing_export_says_how_to_create_it(random_checkpoint: Path) -> None:
    with pytest.raises(ExportError, match="outfit-compat export"):
        load_backend(random_checkpoint, backend="onnx")
    with pytest.raises(ExportError, match="--int8 --data"):
        load_backend(random_checkpoint, backend="onnx-int8")
    with pytest.raises(ExportError, match="--int8 --data"):
        load_backend(random_checkpoint, backend="openvino-int8")


@pytest.mark.parametrize("name", FP32_EXPORT_BACKENDS)
def test_stale_export_after_retraining_is_refused(exported: Path, scratch: Path, name: str) -> None:
    _, card = load_embedder(scratch)
    torch.manual_seed(123)
    save_checkpoint(build_embedder(card.config), scratch)  # a re-trained model in the same directory
    old = variant_path(exported, "fp32")
    shutil.copy(old, variant_path(scratch, "fp32"))  # ...next to the previous model's export
    shutil.copy(sidecar_path(old), sidecar_path(variant_path(scratch, "fp32")))
    with pytest.raises(ExportError, match="stale"):
        load_backend(scratch, backend=name)


@pytest.mark.parametrize("name", FP32_EXPORT_BACKENDS)
def test_corrupt_onnx_file_is_refused(scratch: Path, name: str) -> None:
    with variant_path(scratch, "fp32").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ExportError, match="sha256"):
        load_backend(scratch, backend=name)


def test_replaced_weights_are_refused_even_with_a_matching_sidecar(scratch: Path) -> None:
    weights = scratch / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\1")
    with pytest.raises(CheckpointError, match="does not match the model card"):
        load_backend(scratch, backend="onnx")


def test_malformed_sidecar_is_refused(scratch: Path) -> None:
    sidecar_path(variant_path(scratch, "fp32")).write_text("{not json")
    with pytest.raises(ExportError, match="malformed"):
        load_backend(scratch, backend="onnx")


def test_sidecar_with_other_preprocessing_is_refused(scratch: Path) -> None:
    side = sidecar_path(variant_path(scratch, "fp32"))
    raw = json.loads(side.read_text())
    raw["preprocess"]["image_size"] = 96
    side.write_text(json.dumps(raw))
    with pytest.raises(ExportError, match="preprocessing"):
        load_backend(scratch, backend="onnx")


def test_sidecar_of_unknown_format_is_refused(exported: Path) -> None:
    raw = read_export_info(exported, "fp32").to_dict()
    raw["format"] = 99
    with pytest.raises(ValueError, match="format 99"):
        ExportInfo.from_dict(raw)


def test_unknown_backend_and_gpu_onnx_are_refused(exported: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        load_backend(exported, backend="tensorrt")
    with pytest.raises(ValueError, match="CPU only"):
        load_backend(exported, backend="onnx", device="cuda")
    with pytest.raises(ValueError, match="CPU only"):
        load_backend(exported, backend="openvino", device="cuda")


def test_unknown_variant_is_refused(exported: Path) -> None:
    with pytest.raises(ValueError, match="unknown export variant 'fp16'"):
        variant_path(exported, "fp16")


@pytest.mark.parametrize(
    ("index", "serving", "ok"),
    [
        ("torch", "torch", True),
        ("torch", "onnx", True),
        ("onnx", "torch", True),
        ("onnx-int8", "onnx-int8", True),
        ("openvino", "torch", True),
        ("onnx-int8", "openvino-int8", True),
        ("openvino-int8", "onnx-int8", True),
        ("openvino-int8", "openvino", False),
        ("torch", "onnx-int8", False),
        ("onnx-int8", "onnx", False),
        ("onnx-int8", "torch", False),
    ],
)
def test_backend_compatibility_rule(index: str, serving: str, ok: bool) -> None:
    if ok:
        check_backend_compatible(index, serving)
    else:
        with pytest.raises(BackendMismatchError, match=f"built with backend '{index}'"):
            check_backend_compatible(index, serving)


def test_backend_compatibility_covers_every_backend_and_rejects_unknown_names() -> None:
    for name in BACKENDS:
        check_backend_compatible(name, name)
    with pytest.raises(BackendMismatchError, match="unknown index backend 'tensorrt'"):
        check_backend_compatible("tensorrt", "torch")
    with pytest.raises(BackendMismatchError, match="unknown serving backend ''"):
        check_backend_compatible("torch", "")


@pytest.mark.mango
def test_onnx_matches_torch_on_real_photos(exported: Path, mango_root: Path) -> None:
    paths = sorted((mango_root / "images").glob("*.jpg"))[::250][:32]
    images = [load_image_file(p) for p in paths]
    ref = embed_pil(load_backend(exported, backend="torch"), images, batch_size=16)
    got = embed_pil(load_backend(exported, backend="onnx", threads=1), images, batch_size=16)
    assert len(images) == 32
    assert row_cosines(ref, got).min() >= FP32_MIN_COSINE
