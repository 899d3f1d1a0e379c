"""`outfit-compat data ...`: generate the synthetic benchmark and inspect datasets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from catalog.polyvore import SPLIT_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="synthetic data and dataset checks")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    synth = dsub.add_parser("synth", help="write the synthetic benchmark in Polyvore Outfits layout")
    synth.add_argument("--out", type=Path, required=True, help="output dataset directory")
    synth.add_argument("--items", type=int, default=2000, help="items in outfits (plus the unlabeled pool)")
    synth.add_argument("--outfits", type=int, default=1000)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--image-size", type=int, default=128)
    synth.set_defaults(func=cmd_synth)

    stats = dsub.add_parser("stats", help="print dataset statistics and problems as JSON")
    stats.add_argument("root", type=Path)
    stats.add_argument("--polyvore-split", choices=SPLIT_KINDS, default="nondisjoint")
    stats.add_argument("--no-images", action="store_true", help="skip the image-exists check")
    stats.set_defaults(func=cmd_stats)


def cmd_synth(args: argparse.Namespace) -> int:
    from catalog.synth import generate_synthetic

    if args.items < 50 or args.outfits < 20:
        raise SystemExit("error: --items must be ≥ 50 and --outfits ≥ 20 for three usable splits")
    t0 = time.perf_counter()
    summary = generate_synthetic(
        args.out, items=args.items, outfits=args.outfits, seed=args.seed, image_size=args.image_size
    )
    info = summary if isinstance(summary, dict) else getattr(summary, "__dict__", {"summary": str(summary)})
    print(
        json.dumps({"out": str(args.out), "seconds": round(time.perf_counter() - t0, 2), **info}, indent=2, default=str)
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from catalog.stats import dataset_stats

    stats = dataset_stats(args.root, args.polyvore_split, check_images=not args.no_images)
    print(json.dumps(stats, indent=2))
    return 0 if stats["ok"] else 1
