"""`outfit-compat train | evaluate | embed`: thin wrappers around `training.loop.train` and
`training.evaluate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from training.config import NEGATIVES, PRESETS

# CLI flag -> TrainConfig field, for options given explicitly (None = keep the preset's value).
_OVERRIDES: dict[str, str] = {
    "kind": "kind", "labeled_fraction": "labeled_fraction", "unlabeled_dir": "unlabeled_dir",
    "image_size": "image_size", "embed_dim": "embed_dim", "backbone_weights": "backbone_weights",
    "margin": "margin", "lambda_ss": "lambda_ss", "lambda_pseudo": "lambda_pseudo", "batch_size": "batch_size",
    "unlabeled_batch": "unlabeled_batch", "ss_unlabeled": "ss_unlabeled", "lr": "lr", "epochs": "epochs",
    "triplets_per_epoch": "triplets_per_epoch", "max_steps": "max_steps", "seed": "seed", "device": "device",
    "workers": "workers", "log_every": "log_every", "checkpoint_every": "checkpoint_every",
    "lr_schedule": "lr_schedule", "warmup_steps": "warmup_steps", "hflip": "hflip", "shape_aug": "shape_aug",
    "negatives": "negatives",
    "weight_ema": "weight_ema", "select_epoch": "select_epoch", "probe_test": "probe_test",
    "pseudo_warmup_steps": "pseudo_warmup_steps", "pseudo_rampup_steps": "pseudo_rampup_steps",
    "rampup_ss": "rampup_ss", "ema_decay": "ema_decay", "category_matching": "category_matching",
    "acceptance": "acceptance", "ratio_threshold": "ratio_threshold", "queue_size": "queue_size",
}


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="semi-supervised training (L_l + λ_ss·L_ss + λ_pseudo·L_pseudo)")
    t.add_argument("--data", type=Path, required=True, help="Polyvore-format dataset root")
    t.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, logs, plots)")
    t.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    t.add_argument("--kind", choices=("nondisjoint", "disjoint"))
    t.add_argument("--labeled-fraction", type=float, help="α: fraction of training outfits kept labeled")
    t.add_argument("--unlabeled-dir", help="extra folder of unlabeled product images")
    t.add_argument("--image-size", type=int)
    t.add_argument("--embed-dim", type=int)
    t.add_argument("--backbone-weights", help="none | imagenet | PATH to a resnet18 state_dict")
    t.add_argument("--margin", type=float)
    t.add_argument("--lambda-ss", type=float)
    t.add_argument("--lambda-pseudo", type=float)
    t.add_argument("--no-labeled-loss", action="store_true", help="switch L_l off")
    t.add_argument("--no-ss", action="store_true", help="switch L_ss off")
    t.add_argument("--no-pseudo", action="store_true", help="switch L_pseudo off")
    t.add_argument("--batch-size", type=int, help="labeled triplets per step and process")
    t.add_argument("--unlabeled-batch", type=int, help="unlabeled images searched for pseudo-triplets")
    t.add_argument("--ss-unlabeled", type=int, help="unlabeled images per step in L_ss (0 = all)")
    t.add_argument("--lr", type=float)
    t.add_argument("--lr-schedule", choices=("constant", "cosine"), help="constant (paper) or warm-up + cosine")
    t.add_argument("--warmup-steps", type=int, help="linear lr warm-up steps")
    t.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal flip of labeled triplet images")
    t.add_argument("--shape-aug", type=float,
                   help="probability of the shape transform T_s on each labeled triplet image")
    t.add_argument("--negatives", choices=NEGATIVES,
                   help="L_l's negatives: the triplet's own (paper) or every in-batch item of P's category")
    t.add_argument("--weight-ema", type=float,
                   help="serve an exponential moving average of the weights with this decay (0 = the weights)")
    t.add_argument("--select-epoch", choices=("best", "last"), help="best validated epoch or the last one")
    t.add_argument("--probe-test", action=argparse.BooleanOptionalAction, default=None,
                   help="diagnostic: log test metrics at every validation (never used for selection)")
    g = t.add_argument_group("pseudo-triplet options (beyond the paper; docs/TRAINING.md)")
    g.add_argument("--pseudo-warmup-steps", type=int, help="steps with L_pseudo weight 0 (supervised warm-up)")
    g.add_argument("--pseudo-rampup-steps", type=int, help="then ramp the weight by exp(-5(1-t)^2) over these")
    g.add_argument("--rampup-ss", action=argparse.BooleanOptionalAction, default=None,
                   help="apply the same warm-up and ramp to L_ss")
    g.add_argument("--ema-decay", type=float, help="match with an EMA teacher of this decay (0 = the student)")
    g.add_argument("--category-matching", action=argparse.BooleanOptionalAction, default=None,
                   help="match A, P, N only among unlabeled items of their own category")
    g.add_argument("--acceptance", choices=("none", "mutual", "ratio", "mutual+ratio"),
                   help="drop pseudo-triplets whose matches are not mutual / fail the distance-ratio test")
    g.add_argument("--ratio-threshold", type=float, help="distance-ratio test threshold (nearest/second)")
    g.add_argument("--queue-size", type=int, help="also match against this many recent teacher embeddings")
    t.add_argument("--epochs", type=int)
    t.add_argument("--triplets-per-epoch", type=int)
    t.add_argument("--max-steps", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", choices=("auto", "cpu", "cuda"))
    t.add_argument("--workers", type=int, help="DataLoader worker processes")
    t.add_argument("--log-every", type=int)
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--cache-dir", type=Path, help="keep decoded images here as .npz between runs")
    t.add_argument("--resume", action="store_true", help="continue from --out/state.pt")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="FITB and compatibility AUC of a split")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--kind", choices=("nondisjoint", "disjoint"), default="nondisjoint")
    e.add_argument("--split", choices=("train", "valid", "test"), default="test")
    e.add_argument("--features", choices=("checkpoint", "colorhist", "random"), default="checkpoint")
    e.add_argument("--checkpoint", type=Path)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=cmd_evaluate)

    m = sub.add_parser("embed", help="write the embeddings of a split's items to an .npz (ids, emb)")
    m.add_argument("--checkpoint", type=Path, required=True)
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--kind", choices=("nondisjoint", "disjoint"), default="nondisjoint")
    m.add_argument("--split", choices=("train", "valid", "test"), default="test")
    m.add_argument("--out", type=Path, required=True)
    m.set_defaults(func=cmd_embed)


def config_from_args(args: argparse.Namespace) -> Any:
    from training.config import preset

    overrides: dict[str, Any] = {f: getattr(args, a) for a, f in _OVERRIDES.items() if getattr(args, a) is not None}
    overrides["data"] = str(args.data)
    if args.no_labeled_loss:
        overrides["use_l"] = False
    if args.no_ss:
        overrides["use_ss"] = False
    if args.no_pseudo:
        overrides["use_pseudo"] = False
    return preset(args.preset, **overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from training.config import ConfigError
    from training.loop import train

    try:
        config = config_from_args(args)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from e
    result = train(config, out_dir=args.out, resume=args.resume, cache_dir=args.cache_dir,
                   progress=not args.no_progress)
    print(json.dumps({k: v for k, v in result.to_dict().items() if k != "history"}, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_features

    if args.features == "checkpoint" and args.checkpoint is None:
        raise SystemExit("error: --features checkpoint needs --checkpoint CKPT")
    metrics = evaluate_features(data=args.data, kind=args.kind, split=args.split, features=args.features,
                                checkpoint=args.checkpoint, seed=args.seed)
    print(json.dumps({"kind": args.kind, "split": args.split, "features": args.features, **metrics}, indent=2))
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from training.evaluate import embed_split

    path = embed_split(checkpoint=args.checkpoint, data=args.data, kind=args.kind, split=args.split, out=args.out)
    print(json.dumps({"out": str(path)}))
    return 0
