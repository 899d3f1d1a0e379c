"""Complete the look on the Mango test outfits (issue 14): diversity default, outfit generation, latency.

    nice -n 8 .venv/bin/python benchmarks/bench_look.py --checkpoint RUN/best \
        [--data ../shared/data/mango-outfits] [--index /tmp/look-mango-index] [--seeds first|all]

Builds (or reuses) an index of the whole Mango catalog with the checkpoint (outside the repository), loads
the service Engine on it (the checkpoint's calibration) and measures through the service's own functions:

- diversity: per test outfit, seed = one item; for every other item whose category differs from the seed's,
  the top 5 of that category (`complementary`, per_category 5). Hit rate = share of true items in their
  category's top 5; mean pairwise cosine inside each top 5 (lower = more varied). The default is the
  largest diversity whose hit rate is at most 2 points below diversity 0.
- whole outfits: seed = the outfit's first item, targets = the other items' categories. The generated
  outfit (`complete_outfits`, rank 1, diversity 0) against independent per-category top-1 (the nearest item
  of each target category): calibrated outfit score and the share of true items recovered. Also beam width
  1 (greedy) and a wider beam, and in-process p50/p95 latency of each.
Writes benchmarks/results/look_mango.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.polyvore import PolyvoreDataset  # noqa: E402
from service.complete_look import Seeds, complete_outfits  # noqa: E402
from service.completion import SearchBounds  # noqa: E402
from service.diversity import mean_pairwise_similarity  # noqa: E402
from service.engine import Engine, load_engine  # noqa: E402
from service.recommend import complementary  # noqa: E402
from service.schemas import ComplementaryOptions, CompleteOptions  # noqa: E402
from service.scoring import score_outfit  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "look_mango.json"
DIVERSITIES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
TOP = 5
MAX_DROP_POINTS = 2.0
VARIANTS = {"beam_default": SearchBounds(), "greedy_beam1": SearchBounds(beam_width=1),
            "beam30_cand40": SearchBounds(beam_width=30, candidates=40)}


def ensure_index(checkpoint: Path, data: Path, out: Path) -> Path:
    from embedder.checkpoint import read_model_card
    from index.build import build_catalog_index
    from index.embed_job import EmbedJobConfig
    from index.layout import resolve_version_dir
    from index.manifest import read_manifest

    version = read_model_card(checkpoint).model_version
    try:
        if read_manifest(resolve_version_dir(out))["model_version"] == version:
            return out
    except Exception:  # no index yet, or an unreadable one: build it
        pass
    t0 = time.perf_counter()
    build_catalog_index(checkpoint=checkpoint, catalog=data, out=out,
                        job=EmbedJobConfig(num_workers=0, progress=False, batch_size=128))
    print(f"built the Mango index in {time.perf_counter() - t0:.0f}s", flush=True)
    return out


def fit_head(checkpoint: Path, data: Path, kind: str) -> dict[str, Any]:
    """The checkpoint's category head (`outfit-compat category-head`, training.category_head), held-out figures."""
    from training.category_head import HeadFitConfig, run

    report = run(checkpoint=checkpoint, data=data, kind=kind, cfg=HeadFitConfig(), report_path=None)
    print("category head", json.dumps({k: report[k] for k in ("held_out_head", "held_out_neighbour_vote")}),
          flush=True)
    return report


def _percentiles(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"p50_ms": round(statistics.median(s), 3), "p95_ms": round(s[int(0.95 * (len(s) - 1))], 3), "n": len(s)}


def diversity_sweep(
    engine: Engine, outfits: list[tuple[str, ...]], seeds_mode: str, diversities: tuple[float, ...]
) -> dict[str, Any]:
    cats = engine.index.categories()
    rows: list[dict[str, Any]] = []
    for lam in sorted(set(diversities) | {0.0}):
        hits = total = 0
        sims: list[float] = []
        times: list[float] = []
        for items in outfits:
            found = engine.index.resolve(items)
            seeds = items if seeds_mode == "all" else items[:1]
            for seed in seeds:
                seed_cat = found[seed][1]
                truth = {i: found[i][1] for i in items if found[i][1] != seed_cat}
                if not truth:
                    continue
                targets = sorted(set(truth.values()) & set(cats))
                q = engine.index.vectors_of_rows([found[seed][0]])[0]
                t0 = time.perf_counter()
                groups = complementary(engine, q, query_categories=[seed_cat], query_ids=[seed], options=(
                    ComplementaryOptions(k=TOP * len(targets), per_category=TOP, categories=targets, diversity=lam)))
                times.append((time.perf_counter() - t0) * 1e3)
                shown = {g.category: [it.id for it in g.items] for g in groups}
                for item, cat in truth.items():
                    total += 1
                    hits += item in shown.get(cat, [])
                for ids in shown.values():
                    if len(ids) >= 2:
                        sims.append(mean_pairwise_similarity(engine.index.vectors(ids)))
        rows.append({"diversity": lam, "hit_rate_top5": round(100.0 * hits / total, 2), "true_items": total,
                     "mean_pairwise_cosine_top5": round(float(np.mean(sims)), 4), "lists": len(sims),
                     "latency": _percentiles(times)})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["hit_rate_top5"]
    ok = [r for r in rows if base - r["hit_rate_top5"] <= MAX_DROP_POINTS]
    return {"rows": rows, "rule": f"largest diversity with hit rate >= diversity-0 hit rate - {MAX_DROP_POINTS} pts",
            "chosen_default": max(r["diversity"] for r in ok)}


def outfit_generation(
    engine: Engine, outfits: list[tuple[str, ...]], variants: dict[str, SearchBounds]
) -> dict[str, Any]:
    cats = engine.index.categories()
    acc: dict[str, dict[str, list[float]]] = {k: {"score": [], "recovered": [], "ms": []}
                                              for k in ["independent_top1", *variants]}
    skipped = 0
    for items in outfits:
        found = engine.index.resolve(items)
        seed = items[0]
        seed_cat = found[seed][1]
        truth = [i for i in items[1:] if found[i][1] != seed_cat]
        targets = list(dict.fromkeys(found[i][1] for i in truth if found[i][1] in cats))
        if not targets:
            skipped += 1
            continue
        seed_vec = engine.index.vectors_of_rows([found[seed][0]])
        seeds = Seeds.of_items([seed], seed_vec, [seed_cat])
        t0 = time.perf_counter()
        per_cat = engine.index.search_categories(seed_vec[0], targets, k=1, exclude=(seed,))
        top1 = [per_cat[c][0].item_id for c in targets]
        s = score_outfit(np.concatenate([seed_vec, engine.index.vectors(top1)]), engine.calibration).score
        acc["independent_top1"]["ms"].append((time.perf_counter() - t0) * 1e3)
        acc["independent_top1"]["score"].append(s)
        acc["independent_top1"]["recovered"].append(sum(i in top1 for i in truth) / len(truth))
        for name, bounds in variants.items():
            t0 = time.perf_counter()
            resp = complete_outfits(engine, seeds, CompleteOptions(categories=targets, n_outfits=1, diversity=0.0),
                                    bounds)
            acc[name]["ms"].append((time.perf_counter() - t0) * 1e3)
            best = resp.outfits[0]
            picked = {e.ref for e in best.items if e.role == "added"}
            acc[name]["score"].append(best.score)
            acc[name]["recovered"].append(sum(i in picked for i in truth) / len(truth))
    out: dict[str, Any] = {"outfits": len(outfits) - skipped, "skipped_no_other_category": skipped}
    for name, a in acc.items():
        out[name] = {"mean_outfit_score": round(float(np.mean(a["score"])), 4),
                     "true_items_recovered_pct": round(100.0 * float(np.mean(a["recovered"])), 2),
                     "latency": _percentiles(a["ms"])}
        if name in variants:
            b = variants[name]
            out[name]["bounds"] = {"beam_width": b.beam_width, "candidates": b.candidates}
        print(name, json.dumps(out[name]), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mango-outfits")
    p.add_argument("--index", type=Path, default=Path("/tmp/look-mango-index"))
    p.add_argument("--kind", default="nondisjoint")
    p.add_argument("--seeds", choices=("first", "all"), default="first", help="diversity sweep: seed items per outfit")
    p.add_argument("--fit-head", action="store_true",
                   help="also fit and store the checkpoint's category head (`outfit-compat category-head`)")
    p.add_argument("--skip-diversity", action="store_true")
    p.add_argument("--limit", type=int, default=0, help="only the first N test outfits (0: all)")
    p.add_argument("--diversities", type=float, nargs="+", default=list(DIVERSITIES))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                   help="beam-search bounds to measure against independent top-1")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    import faiss

    faiss.omp_set_num_threads(1)
    index = ensure_index(args.checkpoint, args.data, args.index)
    head_report = fit_head(args.checkpoint, args.data, args.kind) if args.fit_head else None
    engine = load_engine(index_root=index, checkpoint=args.checkpoint, backend=None, batch_max_size=1,
                         batch_max_wait_s=0.0, queue_size=1, retry_after_s=1, metrics=None)
    outfits = [o.item_ids for o in PolyvoreDataset(args.data, args.kind).split("test").outfits]
    outfits = outfits[: args.limit] if args.limit else outfits
    result: dict[str, Any] = {
        "checkpoint": str(args.checkpoint), "model_version": engine.model_version, "data": str(args.data),
        "split": f"{args.kind}/test", "test_outfits": len(outfits), "limit": args.limit,
        "calibrated": engine.calibrated,
        "calibration": engine.calibration.to_dict(), "index_items": engine.index.count,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_average": os.getloadavg()[0],
        "host": platform.processor() or platform.machine(),
    }
    if head_report is not None:
        result["category_head"] = head_report
    if not args.skip_diversity:
        result["diversity"] = diversity_sweep(engine, outfits, args.seeds, tuple(args.diversities))
    result["outfit_generation"] = outfit_generation(engine, outfits, {k: VARIANTS[k] for k in args.variants})
    result["load_average_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
