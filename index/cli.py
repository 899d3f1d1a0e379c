"""`outfit-compat index build|add|remove|search|info`: thin wrappers over index.build / update / reader."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("index", help="build, update and inspect the FAISS catalog index")
    isub = p.add_subparsers(dest="index_command", required=True, metavar="ACTION")

    b = isub.add_parser("build", help="embed a catalog and publish a new index version (torchrun-aware)")
    b.add_argument("--checkpoint", type=Path, required=True)
    b.add_argument("--catalog", type=Path, required=True, help="Polyvore-format directory or .csv/.jsonl catalog")
    b.add_argument("--out", type=Path, required=True, help="index root (versions/ and the `current` link)")
    _embed_args(b)
    b.add_argument("--factory", default=None, help="FAISS factory string overriding the size rule, e.g. IVF1024,PQ16")
    b.add_argument("--exact-threshold", type=int, default=None, help="largest catalog searched exactly (Flat)")
    b.add_argument("--ef-search", type=int, default=None, help="HNSW efSearch recorded for the service")
    b.add_argument("--nprobe", type=int, default=None, help="IVF nprobe recorded for the service")
    b.add_argument("--outfits", type=Path, default=None,
                   help="Polyvore-layout dataset whose training outfits give the category co-occurrence "
                        "(default: the catalog's own, when it is such a dataset)")
    b.set_defaults(func=_guard(cmd_build))

    a = isub.add_parser("add", help="embed new or changed items and publish them as a new version")
    a.add_argument("--index", type=Path, required=True)
    a.add_argument("--checkpoint", type=Path, required=True)
    a.add_argument("--catalog", type=Path, required=True)
    _embed_args(a)
    a.set_defaults(func=_guard(cmd_add))

    r = isub.add_parser("remove", help="publish a new version without the given items")
    r.add_argument("--index", type=Path, required=True)
    r.add_argument("--item-id", action="append", default=[], help="repeatable")
    r.add_argument("--ids-file", type=Path, default=None, help="one item id per line")
    r.add_argument("--keep", type=int, default=3)
    r.set_defaults(func=_guard(cmd_remove))

    s = isub.add_parser("search", help="nearest items to an indexed item or an image file")
    s.add_argument("--index", type=Path, required=True)
    q = s.add_mutually_exclusive_group(required=True)
    q.add_argument("--item-id")
    q.add_argument("--image", type=Path)
    s.add_argument("--category", default=None)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--checkpoint", type=Path, default=None, help="for --image; default: the one in the manifest")
    s.add_argument("--backend", default=None, help="for --image; default: the one in the manifest")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=_guard(cmd_search))

    i = isub.add_parser("info", help="print the manifest of the published version")
    i.add_argument("--index", type=Path, required=True)
    i.set_defaults(func=_guard(cmd_info))


def _embed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default=None,
                   help="embedding backend (torch, onnx, onnx-int8, openvino, openvino-int8); default torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes decoding images")
    p.add_argument("--chunk-size", type=int, default=2048, help="items per resumable chunk")
    p.add_argument("--keep", type=int, default=3, help="published versions kept on disk")
    p.add_argument("--no-progress", action="store_true")


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Expected failures print one clear line (exit 2) instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        from embedder.checkpoint import CheckpointError
        from embedder.image_io import ImageDecodeError
        from index.errors import IndexArtifactError, IndexBuildError

        try:
            return fn(args)
        except (IndexArtifactError, IndexBuildError, CheckpointError, ImageDecodeError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyError as e:
            print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
            return 2

    return run


def _job(args: argparse.Namespace) -> Any:
    from index.embed_job import EmbedJobConfig

    return EmbedJobConfig(
        batch_size=args.batch_size, num_workers=args.workers, chunk_size=args.chunk_size, progress=not args.no_progress
    )


def cmd_build(args: argparse.Namespace) -> int:
    from index.build import build_catalog_index
    from index.distributed import device_for_rank, init_from_env, launched_by_torchrun, shutdown
    from index.writer import IndexPolicy

    defaults = IndexPolicy()
    policy = IndexPolicy(
        exact_threshold=defaults.exact_threshold if args.exact_threshold is None else args.exact_threshold,
        factory=args.factory,
        ef_search=args.ef_search or defaults.ef_search,
        nprobe=args.nprobe or defaults.nprobe,
    )
    dist = init_from_env() if launched_by_torchrun() else None
    try:
        res = build_catalog_index(
            checkpoint=args.checkpoint,
            catalog=args.catalog,
            out=args.out,
            backend=args.backend or "torch",
            device=device_for_rank(dist.rank, args.device) if dist else args.device,
            policy=policy,
            job=_job(args),
            keep=args.keep,
            dist=dist,
            outfits=args.outfits,
        )
    finally:
        if dist is not None:
            shutdown()
    if res.version_dir is not None:
        print(json.dumps({"version_dir": str(res.version_dir), "count": res.count, "rejects": res.rejects,
                          "items_per_second": round(res.stats.items_per_second, 1),
                          "seconds": round(res.seconds, 2)}))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from index.update import add_to_index

    res = add_to_index(index_root=args.index, checkpoint=args.checkpoint, catalog=args.catalog,
                       backend=args.backend, device=args.device, job=_job(args), keep=args.keep)
    print(json.dumps({"version_dir": str(res.version_dir), "operation": res.operation, "added": res.added,
                      "replaced": res.replaced, "rejects": res.rejects, "count": res.count}))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from index.update import remove_from_index

    ids = list(args.item_id)
    if args.ids_file is not None:
        ids += [line.strip() for line in args.ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    res = remove_from_index(index_root=args.index, item_ids=ids, keep=args.keep)
    print(json.dumps({"version_dir": str(res.version_dir), "operation": res.operation, "removed": res.removed,
                      "count": res.count}))
    return 0


def search_command(
    *, index: Path, item_id: str | None, image: Path | None, category: str | None, k: int,
    checkpoint: Path | None = None, backend: str | None = None,
) -> list[dict[str, Any]]:
    """Hits with their metadata, for an indexed item (itself excluded) or an image file."""
    from index.reader import open_index

    if image is None:
        if item_id is None:
            raise ValueError("give --item-id or --image")
        idx = open_index(index)
        query, exclude = idx.vectors([item_id]), [item_id]
    else:
        from embedder.backend import embed_pil, load_backend
        from embedder.image_io import load_image_file
        from index.layout import resolve_version_dir
        from index.manifest import read_manifest

        manifest = read_manifest(resolve_version_dir(index))  # cheap: which model and backend to load
        ckpt = checkpoint or Path(str(manifest.get("checkpoint_path", "")))
        model = load_backend(ckpt, backend=backend or str(manifest["backend"]))
        idx = open_index(index, expected_model_version=model.card.model_version, backend=model.name)
        query, exclude = embed_pil(model, [load_image_file(image)]), []
    hits = idx.search(query, k=k, category=category, exclude=exclude)[0]
    items = idx.get_items([h.item_id for h in hits])
    return [
        {"rank": n, "item_id": h.item_id, "score": round(h.score, 5), "category": items[h.item_id].category,
         "title": items[h.item_id].title}
        for n, h in enumerate(hits, start=1)
    ]


def cmd_search(args: argparse.Namespace) -> int:
    rows = search_command(index=args.index, item_id=args.item_id, image=args.image, category=args.category, k=args.k,
                          checkpoint=args.checkpoint, backend=args.backend)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['rank']:>3}  {r['score']:+.4f}  {r['item_id']:<16} {r['category']:<12} {r['title']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from index.reader import open_index

    print(json.dumps(open_index(args.index).manifest, indent=2, sort_keys=True))
    return 0
