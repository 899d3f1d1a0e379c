"""The demo's index step exports the default int8 backend, publishes the synthetic catalog with it, and
reuses both when nothing changed; the torch backend is one argument away."""

from __future__ import annotations

import shutil
from pathlib import Path

from embedder.onnx_export import variant_path
from embedder.quantize import QuantizeConfig
from index import open_index
from index.demo_step import DEFAULT_BACKEND, demo_index


def test_demo_index_builds_then_reuses(tmp_path: Path, synth_root: Path, random_checkpoint: Path) -> None:
    ckpt = tmp_path / "ck"
    shutil.copytree(random_checkpoint, ckpt)  # the export writes beside the checkpoint: not the shared fixture
    small = QuantizeConfig(calibration_images=32, parity_images=8, probe_images=8)  # test speed, same steps
    first = demo_index(tmp_path, synth_root, checkpoint=ckpt, int8=small)
    idx = open_index(first["index"])
    assert DEFAULT_BACKEND == "openvino-int8" == first["backend"] == idx.manifest["backend"]
    assert variant_path(ckpt, "fp32").is_file() and variant_path(ckpt, "int8").is_file()
    assert first["count"] == idx.count > 0 and first["version"] == idx.version
    assert first["example"]["query"] not in [i for i, _ in first["example"]["nearest"]]
    assert len(first["example"]["nearest"]) == 3
    again = demo_index(tmp_path, synth_root, checkpoint=ckpt, int8=small)
    assert again["version"] == first["version"]  # nothing changed: no rebuild
    fp32 = demo_index(tmp_path, synth_root, checkpoint=ckpt, backend="torch")
    assert fp32["backend"] == "torch" and fp32["version"] != first["version"]  # another numeric family: rebuilt
