"""Named experiment grids: which runs back each table of docs/RESULTS.md and why.

A grid is cells (a preset plus overrides) × split kinds × seeds. `outfit-compat experiment run --grid NAME`
trains every missing (cell, kind, seed) and appends each finished run to benchmarks/results/NAME.json at once,
so an interrupted grid keeps what finished and a rerun skips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MANGO = "mango"
SYNTH = "synth"


@dataclass(frozen=True)
class Cell:
    name: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None  # None: the grid's seeds
    about: str = ""


@dataclass(frozen=True)
class Grid:
    name: str
    about: str
    data: str  # MANGO (the real photo set) or SYNTH (generated)
    kinds: tuple[str, ...]
    seeds: tuple[int, ...]
    cells: tuple[Cell, ...]

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise KeyError(f"grid {self.name} has no cell {name!r}; cells: {[c.name for c in self.cells]}")


# The cpu preset before in-batch negatives joined it (each triplet's own negative, as the paper).
_GIVEN = {"negatives": "given"}
# ... and before shape augmentation: the base of the sweeps and of the earlier previous-preset grids.
_NO_AUG = {**_GIVEN, "shape_aug": 0.0, "tsne_points": 0}
# 300-step proxies (3 epochs of 6,400 triplets at batch 64) around that preset, one change per cell.
_PROXY = {**_NO_AUG, "epochs": 3, "triplets_per_epoch": 6400}

# The pseudo-triplet options together (chosen by the claim-synth grid; docs/TRAINING.md).
OPTIONS: dict[str, Any] = {
    "pseudo_warmup_steps": 100, "pseudo_rampup_steps": 100, "rampup_ss": True, "ema_decay": 0.99,
    "category_matching": True, "acceptance": "ratio", "ratio_threshold": 0.9, "queue_size": 1024,
}
SUPERVISED = {"use_ss": False, "use_pseudo": False}

# Claim budgets: enough steps that α = 100 % clearly beats a small α on supervision alone.
_CLAIM_SYNTH = {"image_size": 32, "batch_size": 32, "unlabeled_batch": 128, "ss_unlabeled": 16, "lr": 1e-3,
                "lr_schedule": "cosine", "warmup_steps": 20, "epochs": 3, "triplets_per_epoch": 3200,
                "tsne_points": 0}
_CLAIM_MANGO = {"image_size": 48, "batch_size": 32, "unlabeled_batch": 128, "ss_unlabeled": 16, "lr": 2e-3,
                "lr_schedule": "cosine", "warmup_steps": 30, "hflip": True, "epochs": 3, "triplets_per_epoch": 3200,
                "tsne_points": 0}


def _claim_cells(
    budget: dict[str, Any], alpha: float, key_seeds: tuple[int, ...], paper_seeds: tuple[int, ...]
) -> tuple[Cell, ...]:
    return (
        Cell(f"supervised-a{alpha:g}", "custom", {**budget, **SUPERVISED, "labeled_fraction": alpha},
             key_seeds, "L_l only on the labeled fraction"),
        Cell(f"paper-a{alpha:g}", "custom", {**budget, "labeled_fraction": alpha}, paper_seeds,
             "L_l + 0.1 L_ss + L_pseudo as the paper states it"),
        Cell(f"options-a{alpha:g}", "custom", {**budget, **OPTIONS, "labeled_fraction": alpha}, key_seeds,
             "the paper's losses with this project's pseudo-triplet options"),
        Cell("supervised-a1", "custom", {**budget, **SUPERVISED, "labeled_fraction": 1.0}, key_seeds,
             "L_l only on every training outfit (the ceiling)"),
    )


GRIDS: dict[str, Grid] = {
    g.name: g
    for g in (
        Grid("cpu-preset-sweep", "one change at a time around the cpu preset on Mango nondisjoint, each cell "
             "given the compute of 300 steps of the centre (64 px, batch 64): a smaller image or batch gets more "
             "steps, a larger one fewer, as a fixed time budget would", MANGO, ("nondisjoint",), (0,), (
                 Cell("centre", "cpu", {**_PROXY, "lr": 2e-3},
                      about="64 px, batch 64, cosine lr 2e-3, 50 warm-up steps, flip"),
                 Cell("lr-1e-3", "cpu", {**_PROXY, "lr": 1e-3}, about="cosine, peak lr 1e-3 (the shipped preset)"),
                 Cell("lr-4e-3", "cpu", {**_PROXY, "lr": 4e-3}, about="cosine, peak lr 4e-3"),
                 Cell("600-steps-lr-2e-3", "cpu", {**_NO_AUG, "lr": 2e-3, "triplets_per_epoch": 12800},
                      about="twice the compute: 600 steps at peak lr 2e-3"),
                 Cell("constant-lr-1e-3", "cpu", {**_PROXY, "lr_schedule": "constant", "lr": 1e-3,
                                                  "warmup_steps": 0}, about="the first wave's constant lr"),
                 Cell("no-flip", "cpu", {**_PROXY, "hflip": False}, about="no horizontal flip"),
                 Cell("48px", "cpu", {**_PROXY, "image_size": 48, "triplets_per_epoch": 11392},
                      about="48 px, 534 steps (same compute)"),
                 Cell("96px", "cpu", {**_PROXY, "image_size": 96, "triplets_per_epoch": 2816},
                      about="96 px, 132 steps (same compute)"),
                 Cell("batch-32", "cpu", {**_PROXY, "batch_size": 32}, about="batch 32, 600 steps (same compute)"),
                 Cell("batch-128", "cpu", {**_PROXY, "batch_size": 128}, about="batch 128, 150 steps (same compute)"),
                 Cell("96px-preset-compute", "cpu", {**_NO_AUG, "image_size": 96, "triplets_per_epoch": 5632},
                      about="96 px at the shipped preset's compute (264 steps): does detail help cold start?"),
             )),
        Grid("disjoint-sweep", "one change at a time around the 600-step cpu preset without shape augmentation on "
             "Mango disjoint (cold start, the split whose FITB target that preset missed), each at its compute (600 "
             "steps at 64 px); the shape-aug cell, adopted, also on nondisjoint",
             MANGO, ("disjoint",), (0,), (
                 Cell("shape-aug-0.5", "cpu", {**_NO_AUG, "shape_aug": 0.5}, (0, 1, 2),
                      about="T_s on each labeled image with probability 0.5"),
                 Cell("wd-1e-4", "cpu", {**_NO_AUG, "weight_decay": 1e-4}, about="Adam L2 weight decay 1e-4"),
                 Cell("embed-128", "cpu", {**_NO_AUG, "embed_dim": 128}, about="128-d embedding"),
                 Cell("80px", "cpu", {**_NO_AUG, "image_size": 80, "triplets_per_epoch": 8192},
                      about="80 px, 384 steps (same compute)"),
                 Cell("96px", "cpu", {**_NO_AUG, "image_size": 96, "triplets_per_epoch": 5632},
                      about="96 px, 264 steps (same compute)"),
             )),
        Grid("selection-sweep", "the cpu preset with a moving average of its weights (decay 0.99) as the product, "
             "both splits, three seeds; every validation also scores the test split for the trained and the averaged "
             "weights, so best-epoch vs last-epoch and averaged vs trained weights compare on the same runs",
             MANGO, ("nondisjoint", "disjoint"), (0, 1, 2), (
                 Cell("weight-ema-0.99", "cpu", {**_GIVEN, "weight_ema": 0.99, "probe_test": True, "tsne_points": 0},
                      about="EMA of the weights (0.99) validated and saved, best validated epoch"),
             )),
        Grid("negatives-sweep", "the cpu preset with L_l's negatives taken from the whole batch (every in-batch "
             "item of P's category, never A or P) instead of each triplet's one random negative: the hinge averaged "
             "over them (batch-all) or the closest one (batch-hard); same images, same steps",
             MANGO, ("disjoint", "nondisjoint"), (0, 1, 2), (
                 Cell("batch-all", "cpu", {"negatives": "batch-all", "tsne_points": 0},
                      about="hinge averaged over every in-batch negative of P's category"),
                 Cell("batch-hard", "cpu", {"negatives": "batch-hard", "tsne_points": 0},
                      about="hinge on the closest in-batch negative of P's category"),
             )),
        Grid("cpu-preset", "the cpu preset as shipped, both splits, three seeds (the issue's targets)",
             MANGO, ("nondisjoint", "disjoint"), (0, 1, 2), (Cell("cpu", "cpu", {"tsne_points": 0}),)),
        Grid("cpu-preset-given-negatives", "the cpu preset before in-batch negatives (each triplet's own random "
             "negative, as the paper), both splits, three seeds", MANGO, ("nondisjoint", "disjoint"), (0, 1, 2),
             (Cell("cpu", "cpu", {**_GIVEN, "tsne_points": 0}),)),
        Grid("cpu-preset-no-shape-aug", "the cpu preset before shape augmentation (600 steps), both splits, "
             "three seeds", MANGO, ("nondisjoint", "disjoint"), (0, 1, 2), (Cell("cpu", "cpu", _NO_AUG),)),
        Grid("cpu-preset-300steps", "an earlier cpu preset (300 steps, half of today's), both splits, three "
             "seeds: what the longer schedule buys", MANGO, ("nondisjoint", "disjoint"), (0, 1, 2),
             (Cell("cpu", "cpu", _PROXY),)),
        Grid("claim-synth", "the paper's claim on the synthetic benchmark at α = 5 %", SYNTH, ("nondisjoint",),
             (0, 1, 2), _claim_cells(_CLAIM_SYNTH, 0.05, (0, 1, 2), (0, 1, 2))),
        Grid("claim-mango", "the paper's claim on Mango where labels are scarce: α = 0.5 % (26 training outfits), "
             "chosen by the pilots (at α = 1 % and 2 % supervised alone already matched α = 100 % at this budget)",
             MANGO, ("nondisjoint", "disjoint"), (0, 1, 2), (
                 *_claim_cells(_CLAIM_MANGO, 0.005, (0, 1, 2), (0, 1, 2)),
                 Cell("supervised-a0.01", "custom", {**_CLAIM_MANGO, **SUPERVISED, "labeled_fraction": 0.01}, (0,),
                      "pilot: where labels, not steps, are scarce"),
                 Cell("supervised-a0.02", "custom", {**_CLAIM_MANGO, **SUPERVISED, "labeled_fraction": 0.02}, (0,),
                      "pilot: the first α tried"),
                 Cell("options-a0.02", "custom", {**_CLAIM_MANGO, **OPTIONS, "labeled_fraction": 0.02}, (0,),
                      "pilot: the options at α = 2 %"),
             )),
    )
}
