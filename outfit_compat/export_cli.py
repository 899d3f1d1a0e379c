"""`outfit-compat export CKPT [--int8 --data DATASET]`: ONNX exports beside a checkpoint (issue 7).

Lives outside `embedder/` because importing that package loads torch, and `--help` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

KINDS: tuple[str, ...] = ("nondisjoint", "disjoint")
METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (fp32) and optionally int8 for the onnx / onnx-int8 backends",
        description="Writes CKPT/model.onnx (+ CKPT/model.int8.onnx with --int8) with sha256 sidecars.",
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint directory (model.safetensors + model_card.json)")
    p.add_argument("--int8", action="store_true", help="also write the static int8 model (needs --data)")
    p.add_argument("--data", type=Path, help="Polyvore-format dataset whose train photos calibrate int8")
    p.add_argument("--kind", choices=KINDS, default="nondisjoint", help="split kind of --data")
    p.add_argument("--calibration-images", type=int, default=256, help="train-split photos to calibrate on")
    p.add_argument("--parity-images", type=int, default=128, help="test-split photos for the int8 parity check")
    p.add_argument("--method", choices=METHODS, default="minmax", help="activation-range calibration")
    p.add_argument(
        "--weight-bits", choices=("auto", "7", "8"), default="auto",
        help="int8 weight range: 8 needs VNNI to stay exact, 7 cannot saturate on AVX2-only CPUs; auto picks "
        "for this CPU (export on the kind of CPU that serves, or choose 7 for a fleet without VNNI)",
    )
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--reuse-fp32", action="store_true", help="keep a verified existing model.onnx")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from embedder.checkpoint import CheckpointError
    from embedder.image_io import ImageDecodeError

    if args.int8 and args.data is None:
        print("error: --int8 needs --data DATASET (catalog photos to calibrate on)", file=sys.stderr)
        return 2
    for noisy in ("onnx_ir", "onnxscript"):  # exporter passes log every rewrite at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        report = run_export(args)
    except (CheckpointError, ImageDecodeError, ValueError) as e:  # ExportError (stale/corrupt/parity), bad options
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def run_export(args: argparse.Namespace) -> dict[str, object]:
    from catalog.photo_sample import int8_photos
    from embedder.onnx_export import ExportError, export_onnx, verify_export
    from embedder.quantize import QuantizeConfig, quantize_int8

    report: dict[str, object] = {"checkpoint": str(args.checkpoint)}
    t0 = time.perf_counter()
    fp32 = None
    if args.reuse_fp32:
        try:
            fp32 = verify_export(args.checkpoint, "fp32")[1]
        except ExportError:
            fp32 = None
    if fp32 is None:
        fp32 = export_onnx(args.checkpoint, opset=args.opset)
    report["fp32"] = {"file": fp32.onnx_file, "sha256": fp32.onnx_sha256, "parity": fp32.parity}
    if args.int8:
        cfg = QuantizeConfig(
            kind=args.kind,
            calibration_images=args.calibration_images,
            parity_images=args.parity_images,
            method=args.method,
            reduce_range=None if args.weight_bits == "auto" else args.weight_bits == "7",
        )
        q = quantize_int8(args.checkpoint, photos=int8_photos(args.data, cfg), config=cfg)
        report["int8"] = {"file": q.onnx_file, "sha256": q.onnx_sha256, "parity": q.parity}
    report["model_version"] = fp32.model_version
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report
