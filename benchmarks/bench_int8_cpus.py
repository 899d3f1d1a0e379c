"""int8 parity and speed per CPU kind and weight range (issue 16).

    /work/bin/quiet .venv/bin/python benchmarks/bench_int8_cpus.py [--emulate Haswell] [--probe-images 16]

Exports a random-init 112 px, d=64 checkpoint (the worst case for int8: its embeddings all lie close
together) to int8 twice, with 8-bit and with 7-bit (`reduce_range`) weights, calibrated on a seeded
synthetic dataset. For each export and each int8 runtime it records the parity probe's figures
(`embedder.int8_parity`: relative error = mean ||int8 - fp32|| / mean pairwise distance, min cosine, pass or
fail against the export's bound) on this CPU and, through Debian's `qemu-user` (`qemu-x86_64 -cpu Haswell`:
AVX2, no AVX-512, no VNNI), on an emulated AVX2-only CPU; and the speed of each export on this CPU (batch 1
latency and batch-32 throughput, 1 thread). Emulation gives the AVX2 kernels' exact arithmetic, not their
speed. Writes benchmarks/results/bench_int8_cpus.json with the /proc/cpuinfo flags.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from loadgen import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "bench_int8_cpus.json"

# Torch-free, so that it starts in reasonable time under emulation.
_PARITY = """
import json, sys
from pathlib import Path
import numpy as np
import onnxruntime as ort
import openvino as ov
from embedder.int8_parity import check_parity, cpu_kind

ckpt = Path(sys.argv[1])
sha = json.loads((ckpt / "model.int8.onnx.json").read_text())["quantization"]["probe"]["sha256"]
model = str(ckpt / "model.int8.onnx")
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})

class Ort:
    def embed_batch(self, x):
        return session.run(None, {"images": x})[0]

class Ov:
    def embed_batch(self, x):
        return np.asarray(compiled.create_infer_request().infer({0: x})[compiled.output(0)])

out = {"cpu": cpu_kind()}
for name, backend in (("onnx-int8", Ort()), ("openvino-int8", Ov())):
    out[name] = check_parity(backend, ckpt / "model.int8.probe.npz", expected_sha256=sha).to_dict()
print(json.dumps(out))
"""


def export(base: Path, dest: Path, synth: Path, *, reduce_range: bool, probe_images: int) -> Path:
    from catalog.photo_sample import int8_photos
    from embedder.quantize import QuantizeConfig, quantize_int8

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base, dest)
    (dest / "model.int8.onnx").unlink(missing_ok=True)
    cfg = QuantizeConfig(calibration_images=128, parity_images=32, probe_images=probe_images,
                         reduce_range=reduce_range)
    quantize_int8(dest, photos=int8_photos(synth, cfg), config=cfg)
    return dest


def parity(ckpt: Path, emulate: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-c", _PARITY, str(ckpt)]
    if emulate:
        cmd = ["qemu-x86_64", "-cpu", emulate, *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"parity run failed ({emulate or 'native'}): {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["cpu_source"] = f"qemu-x86_64 -cpu {emulate}" if emulate else "this CPU"
    if emulate:  # qemu-user passes the host's /proc/cpuinfo through: name the emulated CPU instead
        out["cpu"] = f"{emulate} (emulated: AVX2, no AVX-512, no VNNI)"
        for v in out.values():
            if isinstance(v, dict):
                v["cpu"] = out["cpu"]
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def speed(ckpt: Path, rounds: int = 30) -> dict[str, Any]:
    from embedder.backend import load_backend

    x = np.random.default_rng(0).standard_normal((32, 3, 112, 112)).astype(np.float32)
    out: dict[str, Any] = {}
    for name in ("onnx-int8", "openvino-int8"):
        b = load_backend(ckpt, backend=name, threads=1)
        b.embed_batch(x[:1])
        b.embed_batch(x)
        lat = []
        for _ in range(rounds):
            t = time.perf_counter()
            b.embed_batch(x[:1])
            lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(3):
            b.embed_batch(x)
        # `served`: what load_backend returned; an export failing its probe here is timed as its fp32 fallback
        out[name] = {"served": b.name, "b1_p50_ms": round(float(np.median(lat)) * 1e3, 3),
                     "b32_images_per_s": round(96 / (time.perf_counter() - t), 1), "threads": 1}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emulate", default="Haswell", help="qemu CPU model to emulate ('' to skip)")
    p.add_argument("--probe-images", type=int, default=16)
    p.add_argument("--workdir", type=Path, default=ROOT / "artifacts" / "bench_int8_cpus")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    load = os.getloadavg()
    from bench_service import ensure_checkpoint

    base = ensure_checkpoint(args.workdir, "onnx-int8")  # fp32 export + calibration data
    synth = args.workdir / "calibration-synth"
    rows = []
    for bits, reduce_range in (("8", False), ("7", True)):
        ckpt = export(base, args.workdir / f"w{bits}", synth, reduce_range=reduce_range,
                      probe_images=args.probe_images)
        from embedder.onnx_export import read_export_info

        q = read_export_info(ckpt, "int8").quantization
        row: dict[str, Any] = {"weight_bits": bits, "export_probe": q["probe"], "speed_this_cpu": speed(ckpt),
                               "parity": [parity(ckpt, None)]}
        if args.emulate and shutil.which("qemu-x86_64"):
            row["parity"].append(parity(ckpt, args.emulate))
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"benchmark": "bench_int8_cpus", "loadavg_at_start": [round(v, 2) for v in load],
               "loadavg_at_end": [round(v, 2) for v in os.getloadavg()], "cpu": cpu_flags(),
               "model": "random-init resnet18, 112 px, d=64 (worst case for int8)", "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
