"""CPU inference benchmark (issue 7): torch eager vs tuned torch vs ONNX Runtime fp32 vs int8, one run.

    .venv/bin/python benchmarks/bench_inference.py [--checkpoint CKPT] [--threads 2] [--quick]

Throughput (images/s) at batch 1, 8, 32 and batch-1 latency, all variants interleaved round by round
so machine contention hits them alike; achieved GFLOP/s against this CPU's fp32 peak; accuracy parity
(fp32 export vs torch, int8 vs fp32 FITB/AUC) on the synthetic benchmark and, when present, the
mango-outfits test split. Writes benchmarks/results/bench_inference.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference_parity import parity_report  # noqa: E402

from catalog.photo_sample import int8_photos  # noqa: E402
from embedder import (  # noqa: E402
    EmbedderConfig,
    PreprocessConfig,
    build_embedder,
    load_embedder,
    read_model_card,
    save_checkpoint,
)
from embedder.backend import embed_one, load_backend  # noqa: E402
from embedder.files import write_atomic  # noqa: E402
from embedder.onnx_export import NormalizedEmbedder, export_onnx  # noqa: E402
from embedder.quantize import QuantizeConfig, quantize_int8  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_inference.json"
MANGO = ROOT.parent / "shared" / "data" / "mango-outfits"
BATCHES = (1, 8, 32)
# Zen 4 executes AVX-512 on two 256-bit FMA pipes: 2 x 8 lanes x 2 flops = 32 fp32 flops/cycle/core.
FP32_FLOPS_PER_CYCLE = 32
Runner = Callable[[np.ndarray], Any]


def checkpoints_under(root: Path) -> list[Path]:
    """Checkpoint directories under `root`, oldest first."""
    cards = sorted(root.glob("**/model_card.json"), key=lambda p: p.stat().st_mtime)
    return [c.parent for c in cards if (c.parent / "model.safetensors").is_file()]


def find_checkpoint(explicit: Path | None) -> tuple[Path | None, str]:
    """The given checkpoint, else the newest trained default-size (112 px) one under artifacts/, else random init.

    Speed does not depend on the weights; a trained model only makes the parity figures representative.
    """
    if explicit is not None:
        return explicit, "given"
    default_size = PreprocessConfig().image_size
    fits = [
        c
        for c in checkpoints_under(ROOT / "artifacts")
        if (card := read_model_card(c)).config.preprocess.image_size == default_size and card.metrics
    ]
    if fits:
        return fits[-1], "newest trained 112 px under artifacts/"
    return None, "random init, seed 0 (no trained 112 px checkpoint)"


def find_trained(explicit: Path | None) -> Path | None:
    """A trained checkpoint of any size for the accuracy-parity check (random init near-ties every answer)."""
    if explicit is not None:
        return explicit
    trained = [c for c in checkpoints_under(ROOT / "artifacts") if read_model_card(c).metrics]
    return trained[-1] if trained else None


def prepare_checkpoint(src: Path | None, dst: Path) -> Path:
    """A private copy (exports are written beside it) of the checkpoint, or a seeded random-init one."""
    if src is None:
        torch.manual_seed(0)
        save_checkpoint(build_embedder(EmbedderConfig()), dst, training_config={"preset": "random-init"})
    else:
        shutil.copytree(src, dst)
    return dst


def count_macs(model: torch.nn.Module, image_size: int) -> int:
    """Multiply-accumulates of one image through every Conv2d and Linear (forward hooks, exact)."""
    total = 0

    def hook(mod: torch.nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            total += out.numel() * mod.in_features

    layers = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.inference_mode():
        model(torch.zeros(1, 3, image_size, image_size))
    for h in handles:
        h.remove()
    return total


def measured_gemm_gflops(threads: int, n: int = 2048, seconds: float = 2.0) -> float:
    """fp32 GFLOP/s of a large square GEMM: what this CPU really sustains (turbo and VM included)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        calls += 1
    return 2 * n**3 * calls / (time.perf_counter() - t0) / 1e9


def cpu_peak(threads: int) -> dict[str, Any]:
    mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines() if "cpu MHz" in line]
    ghz = (max(mhz) if mhz else 0.0) / 1000.0
    flags = Path("/proc/cpuinfo").read_text()
    names = [ln.split(":")[1].strip() for ln in flags.splitlines() if ln.startswith("model name")]
    return {
        "model": names[0] if names else platform.processor(),
        "cores_used": threads,
        "ghz_nominal": ghz,
        "avx512_vnni": "avx512_vnni" in flags,
        "fp32_flops_per_cycle_per_core": FP32_FLOPS_PER_CYCLE,
        "fp32_peak_gflops_nominal": threads * ghz * FP32_FLOPS_PER_CYCLE,
        "peak_assumption": "nominal clock x 32 fp32 flop/cycle/core (two 256-bit FMA pipes); turbo ignored, so "
        "achieved rates can exceed it",
        # The denominator of the fractions: a measured ceiling, since the VM's real clock is not visible.
        "fp32_peak_gflops": measured_gemm_gflops(threads),
        "fp32_peak_source": "measured: torch.mm 2048x2048 fp32 GEMM at the same thread count",
    }


def torch_variants(ckpt: Path) -> dict[str, Runner]:
    """Plain eager, and the tuned settings tried: channels_last, and traced+frozen (BN folded, oneDNN)."""
    model, card = load_embedder(ckpt)
    eager = NormalizedEmbedder(model).eval()
    size = card.config.preprocess.image_size
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.trace(eager, torch.zeros(1, 3, size, size)))
    cl_model, _ = load_embedder(ckpt)
    cl = NormalizedEmbedder(cl_model.to(memory_format=torch.channels_last)).eval()

    def run(m: Callable[[torch.Tensor], torch.Tensor], channels_last: bool = False) -> Runner:
        def f(x: np.ndarray) -> Any:
            t = torch.from_numpy(x)
            if channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                return m(t).numpy()

        return f

    return {"torch-eager": run(eager), "torch-channels-last": run(cl, True), "torch-jit-frozen": run(frozen)}


def measure(runners: dict[str, Runner], batch: int, size: int, *, rounds: int, calls: int) -> dict[str, list[float]]:
    """Per-call seconds for every runner; runners alternate round by round (rotated start) to share noise."""
    x = np.random.default_rng(batch).standard_normal((batch, 3, size, size)).astype(np.float32)
    names = list(runners)
    for n in names:  # warm-up: allocators, oneDNN primitive caches, ORT arenas
        runners[n](x)
        runners[n](x)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            for _ in range(calls):
                t0 = time.perf_counter()
                runners[n](x)
                times[n].append(time.perf_counter() - t0)
    return times


def summarize(times: dict[int, dict[str, list[float]]], gflop_per_image: float, peak: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch, per in times.items():
        for name, ts in per.items():
            med = statistics.median(ts)
            row = out.setdefault(name, {})
            ips = batch / med
            row[f"images_per_s_b{batch}"] = round(ips, 1)
            row[f"gflops_b{batch}"] = round(ips * gflop_per_image, 1)
            row[f"fraction_of_fp32_peak_b{batch}"] = round(ips * gflop_per_image / peak, 3) if peak else None
            if batch == 1:
                q = np.percentile(np.asarray(ts) * 1000, [50, 90])
                row["p50_ms_b1"], row["p90_ms_b1"] = round(float(q[0]), 2), round(float(q[1]), 2)
    return out


def upload_fast_path(ckpt: Path, image_path: Path | None, threads: int, calls: int) -> dict[str, float]:
    """Decoded photo -> embedding via embed_one (resize, normalise, int8 model): the upload's model share."""
    from PIL import Image

    from embedder.image_io import load_image_file

    img = load_image_file(image_path) if image_path else Image.new("RGB", (239, 334), (200, 180, 160))
    out: dict[str, float] = {}
    for name in ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8"):
        backend = load_backend(ckpt, backend=name, threads=threads)
        for _ in range(3):
            embed_one(backend, img)
        ts = []
        for _ in range(calls):
            t0 = time.perf_counter()
            embed_one(backend, img)
            ts.append(time.perf_counter() - t0)
        out[f"{name}_p50_ms"] = round(statistics.median(ts) * 1000, 2)
    return out


def synthetic_dataset(work: Path) -> Path:
    from catalog.synth import generate_synthetic

    root = work / "synth"
    generate_synthetic(root)  # the default synthetic benchmark: 2000 items, 1000 outfits, seed 0
    return root


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--checkpoint", type=Path, help="speed model; default: newest 112 px under artifacts/, else random init"
    )
    ap.add_argument("--parity-checkpoint", type=Path, help="trained model for parity; default: newest under artifacts/")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, no mango parity (smoke run)")
    ap.add_argument("--no-parity", action="store_true")
    ap.add_argument("--mango", type=Path, default=MANGO)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    src, origin = find_checkpoint(args.checkpoint)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        work = Path(tmp)
        ckpt = prepare_checkpoint(src, work / "ckpt")
        card = load_embedder(ckpt)[1]
        size = card.config.preprocess.image_size
        synth = synthetic_dataset(work)
        t0 = time.perf_counter()
        export_onnx(ckpt)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        quantize_int8(ckpt, photos=int8_photos(synth, QuantizeConfig()))
        quant_s = time.perf_counter() - t0

        runners: dict[str, Runner] = torch_variants(ckpt)
        for name in ("onnx", "onnx-int8", "openvino", "openvino-int8"):
            runners[name] = load_backend(ckpt, backend=name, threads=args.threads).embed_batch
        rounds = 2 if args.quick else 5
        plan = {1: 10 if args.quick else 30, 8: 2 if args.quick else 5, 32: 1 if args.quick else 2}
        times = {b: measure(runners, b, size, rounds=rounds, calls=plan[b]) for b in BATCHES}
        gflop = 2 * count_macs(load_embedder(ckpt)[0], size) / 1e9
        peak = cpu_peak(args.threads)
        speed = summarize(times, gflop, peak["fp32_peak_gflops"])
        torch_tuned = [n for n in speed if n.startswith("torch-") and n != "torch-eager"]
        def fastest(b: int) -> str:
            return max(torch_tuned, key=lambda n: float(speed[n][f"images_per_s_b{b}"]))

        best = {f"b{b}": fastest(b) for b in BATCHES}
        eager = speed["torch-eager"]
        speedup = {
            name: {
                "throughput_b32_x": round(speed[name]["images_per_s_b32"] / eager["images_per_s_b32"], 2),
                "latency_b1_x": round(eager["p50_ms_b1"] / speed[name]["p50_ms_b1"], 2),
            }
            for name in speed
        }
        mango_ok = (args.mango / "polyvore_item_metadata.json").is_file()
        photo = next((args.mango / "images").glob("*.jpg"), None) if mango_ok else None
        fast = upload_fast_path(ckpt, photo, args.threads, 20 if args.quick else 100)
        parity: dict[str, Any] = {}
        if not args.no_parity:
            trained_src = find_trained(args.parity_checkpoint)
            models = {"speed_model": ckpt}
            if trained_src is not None and trained_src != src:
                models["trained"] = prepare_checkpoint(trained_src, work / "trained")
                export_onnx(models["trained"])
            datasets = {"synthetic": synth}
            if mango_ok and not args.quick:
                datasets["mango"] = args.mango
            for label, model_dir in models.items():
                card_p = read_model_card(model_dir)
                entry: dict[str, Any] = {
                    "source": str(trained_src if label == "trained" else src),
                    "image_size": card_p.config.preprocess.image_size,
                    "model_version": card_p.model_version,
                }
                for ds_name, ds_root in datasets.items():
                    # Calibrate on the deployment's own catalog: that dataset's train photos.
                    quantize_int8(model_dir, photos=int8_photos(ds_root, QuantizeConfig()), config=QuantizeConfig())
                    entry[ds_name] = parity_report(model_dir, ds_root, threads=args.threads)
                parity[label] = entry
    result = {
        "benchmark": "bench_inference",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "contention": {
            "loadavg_at_start": [round(v, 2) for v in load],
            "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
            "note": "2-core VM; a load average above ~1 at start means other jobs competed for the cores",
        },
        "checkpoint": {"source": str(src) if src else None, "origin": origin, "model_version": card.model_version},
        "image_size": size,
        "embed_dim": card.config.embed_dim,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, **_runtime_versions()},
        "gflop_per_image": round(gflop, 4),
        "cpu": peak,
        "export_seconds": round(export_s, 1),
        "quantize_seconds": round(quant_s, 1),
        "speed": speed,
        "torch_best_variant": best,
        "speedup_vs_torch_eager": speedup,
        "upload_embed_one": fast,
        "parity": parity,
        "rounds": rounds,
        "calls_per_round": plan,
    }
    write_json(args.out, result)
    print(_table(result))
    print(f"wrote {args.out}")
    return 0


def _runtime_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in ("onnxruntime", "openvino"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _table(r: dict[str, Any]) -> str:
    lines = [
        f"checkpoint: {r['checkpoint']['origin']}  ({r['image_size']} px, d={r['embed_dim']}, "
        f"{r['gflop_per_image']} GFLOP/image, threads={r['threads']}, load {r['contention']['loadavg_at_start']})",
        f"{'variant':22} {'img/s b1':>9} {'img/s b8':>9} {'img/s b32':>10} {'p50 b1 ms':>10} "
        f"{'GFLOP/s b32':>12} {'GEMM %':>7} {'x eager b32':>12} {'x eager lat':>12}",
    ]
    for name, s in r["speed"].items():
        f = r["speedup_vs_torch_eager"][name]
        frac = s["fraction_of_fp32_peak_b32"]
        lines.append(
            f"{name:22} {s['images_per_s_b1']:9.1f} {s['images_per_s_b8']:9.1f} {s['images_per_s_b32']:10.1f} "
            f"{s['p50_ms_b1']:10.2f} {s['gflops_b32']:12.1f} {100 * (frac or 0):6.1f}% "
            f"{f['throughput_b32_x']:12.2f} {f['latency_b1_x']:12.2f}"
        )
    lines.append(f"upload fast path (embed_one from a decoded photo): {r['upload_embed_one']}")
    for label, entry in r["parity"].items():
        for ds, p in entry.items():
            if not isinstance(p, dict):
                continue
            lines.append(
                f"parity {label} ({entry['image_size']} px) on {ds}: fp32-vs-torch min cos "
                f"{p['fp32_vs_torch']['min_cosine']:.6f}; int8-vs-fp32 min cos {p['int8_vs_fp32']['min_cosine']:.4f}, "
                f"top10 overlap {p['int8_vs_fp32']['top10_neighbour_overlap']:.3f}; "
                f"FITB fp32 {p['metrics']['fp32']['fitb']:.4f} int8 {p['metrics']['int8']['fitb']:.4f}; "
                f"AUC fp32 {p['metrics']['fp32']['auc']:.4f} int8 {p['metrics']['int8']['auc']:.4f}; "
                f"within 1 pt: {p['within_1_point']}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
