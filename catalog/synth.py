"""The project's embedded benchmark: a synthetic fashion catalogue in the Polyvore Outfits layout.

Items are drawn product photos whose compatibility follows latent themes (see `synth_themes`):
an outfit takes 3-5 items of one theme from different semantic categories. Colour alone narrows a
theme down only partly; pattern and the theme's cross-category pattern rule settle it, so a colour
histogram beats chance clearly but a model that learns texture can do better. A pool of unlabeled
items (in no outfit) serves semi-supervised training. Everything follows from `seed`: the same seed
gives byte-identical files.
"""

from __future__ import annotations

import heapq
import json
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog.dataset_dir import prepare_out, staging_dir, swap_in
from catalog.polyvore_writer import write_polyvore_dataset
from catalog.synth_draw import jpeg_bytes, render_item
from catalog.synth_splits import Truth, disjoint_splits, nondisjoint_splits
from catalog.synth_themes import COLOURS, ItemLook, Theme, ThemeConfig, category_table, make_themes, sample_look
from catalog.types import Item, Outfit

META_FILE = "synth_meta.json"
VERSION = 1
# Independent random streams, so changing one part (e.g. drawing) never reshuffles another.
_PLAN, _LOOKS, _SPLITS, _DRAW = range(4)
# Outfit recipe: a core (top + bottom, or a one-piece), usually shoes, then extras by weight.
_CORES: tuple[tuple[str, ...], ...] = (("tops", "bottoms"), ("all-body",))
_CORE_P = (0.65, 0.35)
_SHOES_P = 0.85
_EXTRAS = {"outerwear": 3.0, "bags": 4.0, "jewellery": 3.0, "hats": 2.0, "scarves": 1.5, "sunglasses": 1.5}
_EXTRAS["accessories"] = 2.0
_SIZES, _SIZE_P = (3, 4, 5), (0.3, 0.4, 0.3)
_PATTERN_WORDS = {"solid": "", "stripes": "striped ", "diagonal": "diagonal-stripe "}
_PATTERN_WORDS |= {"dots": "polka-dot ", "checks": "gingham ", "zigzag": "zigzag "}


@dataclass(frozen=True)
class SynthSummary:
    """What `generate_synthetic` wrote: counts per role and per split."""

    root: Path
    items: int
    labeled_items: int
    unlabeled_items: int
    outfits: int
    themes: int
    cold_items: int  # items of no disjoint/train outfit that disjoint valid/test ask about
    splits: dict[str, dict[str, dict[str, int]]]  # kind -> split -> {outfits, fitb, compatibility}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "root": str(self.root)}


def _rng(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, *key)))


def _plan_outfits(rng: np.random.Generator, n_outfits: int, n_themes: int) -> list[tuple[int, list[str]]]:
    """(theme index, distinct semantic categories) per outfit."""
    extras, weights = list(_EXTRAS), np.array(list(_EXTRAS.values()))
    plan = []
    for _ in range(n_outfits):
        size = int(rng.choice(_SIZES, p=_SIZE_P))
        cats = list(_CORES[int(rng.choice(len(_CORES), p=_CORE_P))])
        if rng.random() < _SHOES_P:
            cats.append("shoes")
        more = rng.choice(len(extras), size=max(0, size - len(cats)), replace=False, p=weights / weights.sum())
        cats += [extras[int(k)] for k in more]
        plan.append((int(rng.integers(n_themes)), cats))
    return plan


def _allocate(slots: Counter[tuple[int, str]], n_items: int) -> dict[tuple[int, str], int]:
    """Items per (theme, category) cell: one each, then to the most reused cell, never above its slots."""
    cells = sorted(slots)
    if n_items < len(cells):
        raise ValueError(
            f"{n_items} labeled items cannot cover {len(cells)} (theme, category) combinations the outfits "
            "use: raise `items`, lower `outfits` or lower `unlabeled_fraction`"
        )
    alloc = dict.fromkeys(cells, 1)
    heap: list[tuple[float, int, tuple[int, str]]] = [
        (-float(slots[c]), n, c) for n, c in enumerate(cells) if slots[c] > 1
    ]
    heapq.heapify(heap)
    for _ in range(n_items - len(cells)):
        if not heap:
            break  # every item of every cell is already used once; the rest go to the unlabeled pool
        _, n, c = heapq.heappop(heap)
        alloc[c] += 1
        if alloc[c] < slots[c]:
            heapq.heappush(heap, (-slots[c] / alloc[c], n, c))
    return alloc


def _title(look: ItemLook) -> str:
    pattern = _PATTERN_WORDS[look.pattern]
    return f"{look.base} {pattern}{look.fine.lower()}"


@dataclass(frozen=True)
class Catalogue:
    """The latent side of the benchmark: every item's look and the outfits, before any file exists."""

    themes: list[Theme]
    looks: dict[str, ItemLook]  # item id -> look, labeled and unlabeled items alike
    outfits: list[Outfit]


def build_catalogue(
    *, items: int, outfits: int, seed: int, unlabeled_fraction: float, config: ThemeConfig
) -> Catalogue:
    """Themes, item looks and outfits for a seed (no images, no files)."""
    themes = make_themes(_rng(seed, _PLAN), config)
    n_labeled = items - round(items * unlabeled_fraction)
    # A tiny catalogue cannot stock every (theme, category) pair its outfits need: use fewer themes.
    for n_themes in range(len(themes), 0, -1):
        rng = _rng(seed, _PLAN, n_themes)
        plan = _plan_outfits(rng, outfits, n_themes)
        slots = Counter((t, c) for t, cats in plan for c in cats)
        if len(slots) <= n_labeled:
            break
    themes = themes[:n_themes]
    alloc = _allocate(slots, n_labeled)
    # Generation order: labeled items cell by cell, then the unlabeled pool, drawn like the catalogue.
    cells = [cell for cell in sorted(alloc) for _ in range(alloc[cell])]
    n_stocked = len(cells)  # can fall short of n_labeled when outfits cannot use them all
    used = sorted(slots)
    share = np.array([slots[c] for c in used], dtype=np.float64)
    for k in rng.choice(len(used), size=items - n_stocked, p=share / share.sum()):
        cells.append((int(rng.integers(len(themes))), used[int(k)][1]))
    ids = [f"s{int(k):06d}" for k in rng.permutation(items)]  # ids say nothing about theme or role
    look_rng = _rng(seed, _LOOKS)
    looks = {ids[n]: sample_look(look_rng, themes[t], c, config) for n, (t, c) in enumerate(cells)}

    members: dict[tuple[int, str], list[str]] = {}
    for n in range(n_stocked):
        members.setdefault(cells[n], []).append(ids[n])
    # Fill each outfit slot by cycling through its cell's items, so every labeled item is used.
    queues: dict[tuple[int, str], list[str]] = {}
    set_ids = [str(100001 + int(k)) for k in rng.permutation(outfits)]
    outfit_list: list[Outfit] = []
    for set_id, (t, cats) in zip(set_ids, plan, strict=True):
        chosen = []
        for c in cats:
            if not queues.get((t, c)):
                pool = members[(t, c)]
                queues[(t, c)] = [pool[int(k)] for k in rng.permutation(len(pool))]
            chosen.append(queues[(t, c)].pop())
        order = rng.permutation(len(chosen))
        steps = 1 + (rng.random(len(chosen)) < 0.15)  # Polyvore indices skip removed items now and then
        indices = tuple(int(x) for x in np.cumsum(steps))
        outfit_list.append(Outfit(set_id, tuple(chosen[int(k)] for k in order), indices))
    return Catalogue(themes, looks, outfit_list)


def _render_images(root: Path, looks: dict[str, ItemLook], *, seed: int, size: int, jitter: float) -> list[Item]:
    """Draw every item to root/images/{item_id}.jpg; the catalogue entries point at the files."""
    (root / "images").mkdir(parents=True)
    category_id = {(fine, sem): cid for cid, (fine, sem) in category_table().items()}
    catalogue = []
    for item_id in sorted(looks):
        look = looks[item_id]
        # A stream per item: an image depends only on the seed and its id, never on drawing order.
        image = render_item(look, size=size, rng=_rng(seed, _DRAW, int(item_id[1:])), jitter=jitter)
        path = root / "images" / f"{item_id}.jpg"
        path.write_bytes(jpeg_bytes(image))
        catalogue.append(Item(item_id, look.category, category_id[(look.fine, look.category)], _title(look), path))
    return catalogue


def generate_synthetic(
    out: Path,
    *,
    items: int = 2000,
    outfits: int = 1000,
    seed: int = 0,
    image_size: int = 128,
    unlabeled_fraction: float = 0.2,
    config: ThemeConfig | None = None,
) -> SynthSummary:
    """Write the synthetic benchmark to `out` and summarise it.

    `items` counts every product, `unlabeled_fraction` of them kept out of all outfits (more when the
    outfits cannot use them all). `out` may be new, empty or an earlier synthetic dataset, which is
    replaced only once the new one is complete. `config` sets the theme design (see `ThemeConfig`).
    """
    if outfits < 20:
        raise ValueError(f"outfits={outfits}: need at least 20 for train/valid/test splits")
    if image_size < 32:
        raise ValueError(f"image_size={image_size}: need at least 32 pixels")
    if not 0.0 <= unlabeled_fraction < 1.0:
        raise ValueError(f"unlabeled_fraction={unlabeled_fraction}: must be in [0, 1)")
    out = Path(out)
    prepare_out(out, META_FILE, "a synthetic dataset")
    cfg = config or ThemeConfig()
    cat = build_catalogue(items=items, outfits=outfits, seed=seed, unlabeled_fraction=unlabeled_fraction, config=cfg)
    truth = Truth(
        category={i: lk.category for i, lk in cat.looks.items()}, theme={i: lk.theme for i, lk in cat.looks.items()}
    )
    splits = {"nondisjoint": nondisjoint_splits(cat.outfits, truth=truth, rng=_rng(seed, _SPLITS, 0))}
    splits["disjoint"], cold = disjoint_splits(cat.outfits, truth=truth, rng=_rng(seed, _SPLITS, 1))
    labeled = {i for o in cat.outfits for i in o.item_ids}
    params = {"items": items, "outfits": outfits, "seed": seed, "image_size": image_size}
    meta = {
        "generator": "catalog.synth",
        "version": VERSION,
        "params": {**params, "unlabeled_fraction": unlabeled_fraction, "config": asdict(cfg)},
        "colours": COLOURS,
        "themes": [asdict(t) for t in cat.themes],
        "items": {i: {**asdict(cat.looks[i]), "labeled": i in labeled} for i in sorted(cat.looks)},
        "outfit_themes": {o.set_id: truth.theme[o.item_ids[0]] for o in cat.outfits},
        "cold_items": sorted(cold),
    }

    tmp = staging_dir(out)
    try:
        catalogue = _render_images(tmp, cat.looks, seed=seed, size=image_size, jitter=cfg.colour_jitter)
        write_polyvore_dataset(tmp, items=catalogue, categories=category_table(), splits=splits)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = {
        kind: {
            s: {"outfits": len(d.outfits), "fitb": len(d.fitb), "compatibility": len(d.compatibility)}
            for s, d in ds.items()
        }
        for kind, ds in splits.items()
    }
    return SynthSummary(out, items, len(labeled), items - len(labeled), outfits, len(cat.themes), len(cold), counts)
