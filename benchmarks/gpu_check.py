"""One-call check of the trainer on a CUDA machine (run through benchmarks/gpu_check.sh), or tiny on CPU (--cpu).

Phases, each recorded in benchmarks/results/gpu_check.json as soon as it ends (a timeout keeps what finished):
1. synth: the synthetic set, written as `outfit-compat data synth` does;
2. resume: a run started on CPU (disabled grad scaler, saved as {}) resumed on CUDA with AMP;
3. torchrun: `torchrun --nproc_per_node 1` launching (a) a DDP probe that joins a process group on NCCL (gloo with
   --cpu), all-reduces, and takes DDP steps of the embedder, and (b) the trainer's CLI;
4. paper: the `paper` preset (L_l + L_ss + L_pseudo, batch 256, unlabeled 1024) with AMP and channels_last at
   112 px for `--steps` steps: images/s (the trainer's logged step timings), peak CUDA memory, every logged loss
   finite. `--ss-unlabeled` limits the unlabeled images per step that get T_s/T_a views, which are built
   serially on the CPU (0 = all 1024, the paper; a short extra cell `paper_exact` measures that cost).

    benchmarks/gpu_check.sh            # on the GPU machine
    benchmarks/gpu_check.sh --cpu      # the same path, tiny, on CPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
                            "python": sys.version.split()[0], "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info.update(device=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                    nccl=".".join(map(str, torch.cuda.nccl.version())),
                    memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return info


def _steps_of(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "step"]


def phase_synth(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from catalog.synth import generate_synthetic

    root = work / "synth"
    # GPU: 20 % of the items stay out of every outfit, so 5,400 items give the paper's 1,024-image unlabeled batch.
    items, outfits, size = (300, 160, 64) if args.cpu else (args.items, args.items // 4, 128)
    summary = generate_synthetic(root, items=items, outfits=outfits, seed=0, image_size=size)
    return {"root": str(root), "items": items, "outfits": outfits, "image_size": size,
            "summary": str(summary)[:300]}


def _paper_config(args: argparse.Namespace, data: str, *, steps: int, ss_unlabeled: int) -> Any:
    from training.config import preset

    size = {"image_size": 112}
    if args.cpu:  # the same path at a size two CPU cores take in seconds
        size = {"image_size": 32, "batch_size": 8, "unlabeled_batch": 32, "eval_batch": 64}
    config = preset("paper", data=data, amp=True, channels_last=True, device=args.device, max_steps=steps,
                    epochs=1, log_every=1, tsne_points=0, workers=args.workers, ss_unlabeled=ss_unlabeled, **size)
    return config.replace(triplets_per_epoch=config.batch_size * steps)


def _train_cell(args: argparse.Namespace, work: Path, data: str, name: str, *, steps: int,
                ss_unlabeled: int) -> dict[str, Any]:
    from training.loop import train

    config = _paper_config(args, data, steps=steps, ss_unlabeled=ss_unlabeled)
    cuda = config.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = train(config, out_dir=work / name, progress=False, cache_dir=work / "cache")
    wall = time.perf_counter() - t0
    records = _steps_of(work / name)
    timed = records[1:] or records  # the first step pays cuDNN autotuning and allocator warm-up
    losses = [r["loss"] for r in records]
    lines = (work / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    epoch_s = sum(r["seconds"] for r in map(json.loads, lines) if r["type"] == "epoch" and r["epoch"] >= 0)
    return {
        "config": {k: getattr(config, k) for k in ("preset", "image_size", "batch_size", "unlabeled_batch",
                                                   "ss_unlabeled", "amp", "channels_last", "workers", "device")},
        "steps": result.steps, "wall_seconds": round(wall, 1),
        "images_per_step": statistics.median(r["images"] for r in timed),
        "images_per_s": round(statistics.median(r["images_per_s"] for r in timed), 1),
        "step_seconds": round(statistics.median(r["step_seconds"] for r in timed), 4),
        # Steps as logged exclude waiting for the DataLoader; over the whole epoch (incl. its validation) they do not.
        "epoch_images_per_s": round(sum(r["images"] for r in records) / max(epoch_s, 1e-9), 1),
        "data_wait_share": round(max(0.0, 1 - sum(r["step_seconds"] for r in records) / max(epoch_s, 1e-9)), 3),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "losses_finite": all(math.isfinite(v) for v in losses), "first_loss": losses[0], "last_loss": losses[-1],
        "test": result.test,
    }


def phase_paper(args: argparse.Namespace, work: Path, data: str) -> dict[str, Any]:
    return _train_cell(args, work, data, "paper", steps=args.steps, ss_unlabeled=args.ss_unlabeled)


def phase_paper_exact(args: argparse.Namespace, work: Path, data: str) -> dict[str, Any]:
    return _train_cell(args, work, data, "paper_exact", steps=args.exact_steps, ss_unlabeled=0)


def phase_resume(args: argparse.Namespace, work: Path, data: str) -> dict[str, Any]:
    from training.config import preset
    from training.loop import train

    run = work / "resume"
    config = preset("smoke", data=data, epochs=1, triplets_per_epoch=64, tsne_points=0, amp=True, use_ss=False,
                    use_pseudo=False)
    first = train(config.replace(device="cpu", max_steps=2), out_dir=run, progress=False)
    saved = torch.load(run / "state.pt", map_location="cpu", weights_only=False)
    second = train(config.replace(device=args.device), out_dir=run, resume=True, progress=False)
    state = torch.load(run / "state.pt", map_location="cpu", weights_only=False)
    finite = all(bool(torch.isfinite(v.float()).all()) for v in state["model"].values())
    ok = first.steps == 2 and second.steps == 4 and finite
    return {"ok": ok, "steps_on_cpu": first.steps, "steps_after_resume": second.steps,
            "scaler_state_saved_on_cpu": saved["scaler"], "scaler_state_after_resume": state["scaler"],
            "resumed_on": args.device, "weights_finite": finite}


def _torchrun(argv: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", *argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    record: dict[str, Any] = {"command": " ".join(["torchrun", *cmd[3:]])}
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        record.update(returncode=proc.returncode, stderr_tail=proc.stderr[-1500:])
    except subprocess.TimeoutExpired as e:
        record.update(returncode=None, error=f"timed out after {timeout:.0f} s", stderr_tail=str(e.stderr)[-1500:])
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def phase_torchrun(args: argparse.Namespace, work: Path, data: str) -> dict[str, Any]:
    probe_out = work / "ddp_probe.json"
    backend = "gloo" if args.device == "cpu" else "nccl"
    probe = _torchrun([str(Path(__file__).resolve()), "ddp-probe", "--backend", backend, "--device", args.device,
                       "--out", str(probe_out)], timeout=args.torchrun_timeout)
    if probe_out.is_file():
        probe["result"] = json.loads(probe_out.read_text(encoding="utf-8"))
    out = work / "torchrun_train"
    trainer = _torchrun(["-m", "outfit_compat", "train", "--data", data, "--out", str(out), "--preset", "smoke",
                         "--epochs", "1", "--max-steps", "4", "--device", args.device, "--no-progress"],
                       timeout=args.torchrun_timeout)
    if (out / "result.json").is_file():
        trainer["steps"] = json.loads((out / "result.json").read_text(encoding="utf-8"))["steps"]
    ok = probe["returncode"] == 0 and bool(probe.get("result", {}).get("ok")) and trainer["returncode"] == 0 \
        and trainer.get("steps") == 4
    return {"ok": ok, "backend": backend, "ddp_probe": probe, "trainer": trainer}


def ddp_probe(argv: list[str]) -> int:
    """Runs under torchrun: join the process group, all-reduce, take DDP steps of the embedder, check finite."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from embedder import EmbedderConfig, PreprocessConfig, build_embedder

    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("nccl", "gloo"), required=True)
    ap.add_argument("--device", choices=("cpu", "cuda"), required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    local = int(os.environ["LOCAL_RANK"])
    device = torch.device("cuda", local) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=args.backend)
    try:
        flag = torch.ones(1, device=device) * (dist.get_rank() + 1)
        dist.all_reduce(flag)
        torch.manual_seed(0)
        net = build_embedder(EmbedderConfig(embed_dim=32, preprocess=PreprocessConfig(image_size=32))).to(device)
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(3):
            x = torch.randn(16, 3, 32, 32, device=device)
            emb = model(x, normalize=True)
            loss = (emb[:8] * emb[8:]).sum(dim=1).mean()  # one forward per backward, as DDP expects
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        ok = float(flag.item()) == dist.get_world_size() * (dist.get_world_size() + 1) / 2 and all(
            math.isfinite(v) for v in losses)
        if dist.get_rank() == 0:
            args.out.write_text(json.dumps({"ok": ok, "backend": dist.get_backend(), "world_size":
                                            dist.get_world_size(), "all_reduce": float(flag.item()),
                                            "losses": losses}), encoding="utf-8")
    finally:
        dist.destroy_process_group()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ddp-probe"]:
        return ddp_probe(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="the same phases, tiny, on CPU (no CUDA needed)")
    ap.add_argument("--steps", type=int, default=200, help="steps of the paper-preset throughput cell")
    ap.add_argument("--exact-steps", type=int, default=4, help="steps with every unlabeled image in L_ss")
    ap.add_argument("--ss-unlabeled", type=int, default=64, help="unlabeled images per step with T_s/T_a views")
    ap.add_argument("--items", type=int, default=5400, help="synthetic items (GPU mode)")
    ap.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 1) - 2),
                    help="DataLoader workers (the labeled triplets' T_s/T_a views are built there)")
    # The quick correctness phases first: a timeout then only cuts the throughput figures short.
    ap.add_argument("--phases", nargs="+", default=["resume", "torchrun", "paper", "paper_exact"],
                    choices=["paper", "paper_exact", "resume", "torchrun"])
    ap.add_argument("--torchrun-timeout", type=float, default=300, help="seconds per torchrun launch")
    ap.add_argument("--work", type=Path, help="keep run directories here (default: a temporary directory)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    args = ap.parse_args(argv)
    if args.cpu:
        args.device, args.steps, args.exact_steps, args.ss_unlabeled, args.workers = "cpu", 3, 2, 4, 0
        args.torchrun_timeout = max(args.torchrun_timeout, 1200)  # two shared cores: start-up alone can take minutes
        args.out = args.out.with_name("gpu_check_cpu.json") if args.out.name == "gpu_check.json" else args.out
        torch.set_num_threads(2)
    elif not torch.cuda.is_available():
        print("error: no CUDA device; use --cpu for the CPU rehearsal", file=sys.stderr)
        return 2
    else:
        args.device = "cuda"
    from training.finalize import write_json

    payload: dict[str, Any] = {"mode": "cpu" if args.cpu else "cuda", "environment": _env(),
                               "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "phases": {}}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        synth = phase_synth(args, work)
        payload["phases"]["synth"] = synth
        runners: dict[str, Callable[[argparse.Namespace, Path, str], dict[str, Any]]] = {
            "paper": phase_paper, "paper_exact": phase_paper_exact, "resume": phase_resume,
            "torchrun": phase_torchrun,
        }
        for name in args.phases:
            t0 = time.perf_counter()
            try:
                record = runners[name](args, work, synth["root"])
            except Exception as e:  # recorded, and the remaining phases still run
                record = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            record["phase_seconds"] = round(time.perf_counter() - t0, 1)
            ok = record.get("ok", record.get("losses_finite", False))
            failed |= not ok
            payload["phases"][name] = record
            write_json(args.out, payload)
            print(json.dumps({name: {k: v for k, v in record.items() if k not in ("ddp_probe", "trainer")}},
                             default=str), flush=True)
    payload["ok"] = not failed
    payload["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(args.out, payload)
    print(f"wrote {args.out}; {'all phases passed' if not failed else 'some phase FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
