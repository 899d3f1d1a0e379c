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

    imp = dsub.add_parser(
        "import", help="a shop's catalog (CSV/JSONL) + outfits (JSONL) -> the Polyvore layout `train` reads"
    )
    imp.add_argument("--catalog", type=Path, required=True,
                     help=".csv or .jsonl: item_id, image, category [, title, price, url, any attributes]")
    imp.add_argument("--outfits", type=Path, required=True, help=".jsonl: one JSON list of item ids per line")
    imp.add_argument("--out", type=Path, required=True, help="dataset directory to write (new, empty or an "
                     "earlier import)")
    imp.add_argument("--seed", type=int, default=0, help="seeds the splits and the FITB/compatibility questions")
    imp.add_argument("--threads", type=int, default=2, help="threads decoding and writing images")
    imp.set_defaults(func=cmd_import)

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


def cmd_import(args: argparse.Namespace) -> int:
    """Import, then check the result as `data stats` does, for both split kinds."""
    from catalog.shop_import import import_shop
    from catalog.stats import dataset_stats

    t0 = time.perf_counter()
    summary = import_shop(catalog=args.catalog, outfits=args.outfits, out=args.out, seed=args.seed,
                          threads=args.threads)
    seconds = round(time.perf_counter() - t0, 2)
    stats = {kind: dataset_stats(args.out, kind) for kind in SPLIT_KINDS}
    checks = {kind: {"ok": s["ok"], "unlabeled_items": s["unlabeled_items"], "problems": s["problems"][:20]}
              for kind, s in stats.items()}
    print(json.dumps({**summary.to_dict(), "seconds": seconds, "stats": checks}, indent=2))
    return 0 if all(s["ok"] for s in stats.values()) else 1


def cmd_stats(args: argparse.Namespace) -> int:
    from catalog.stats import dataset_stats

    stats = dataset_stats(args.root, args.polyvore_split, check_images=not args.no_images)
    print(json.dumps(stats, indent=2))
    return 0 if stats["ok"] else 1
