"""Convert the Mango photo set (Polyvore layout) into a shop's own export: products.csv + outfits.jsonl.

    .venv/bin/python benchmarks/mango_to_shop.py --mango ../shared/data/mango-outfits --out /tmp/mango-shop
    outfit-compat data import --catalog /tmp/mango-shop/products.csv --outfits /tmp/mango-shop/outfits.jsonl \\
        --out /tmp/mango-shop/dataset

This exercises the `data import` path (docs/SHOP.md) on real photographs: the converted files are what a
shop would export, and `data import` draws its own splits from them. Nothing is copied: `image` holds the
absolute path of each photo (the data stays outside the repository). Every outfit of the set (the union
of the nondisjoint train/valid/test outfits, original set ids) goes into outfits.jsonl; every product,
in an outfit or not, into products.csv.

Columns: item_id, image, category (semantic category), title, and attributes taken from the metadata
(no price: the set has none, and none is invented):
  fine_category  the fine-grained category of categories.csv (Sandals, T-Shirt, ...)
  line           the first word of the product description (C-COMPLEMENTOS, ...)
  colour         the colour word ending the description (NEGRO, MARRON, ...), when it has more than one word

`--outfits N` keeps a seeded sample of N outfits, their products and as many products in no kept outfit
(a small subset for a quick check of the whole path).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("item_id", "image", "category", "title", "fine_category", "line", "colour")


def read_mango(mango: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[dict[str, Any]]]:
    meta = json.loads((mango / "polyvore_item_metadata.json").read_text(encoding="utf-8"))
    fine: dict[str, str] = {}
    with (mango / "categories.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 2:
                fine[row[0]] = row[1]
    outfits: dict[str, dict[str, Any]] = {}
    for split in ("train", "valid", "test"):
        for o in json.loads((mango / "nondisjoint" / f"{split}.json").read_text(encoding="utf-8")):
            outfits.setdefault(str(o["set_id"]), o)
    return meta, fine, list(outfits.values())


def product_row(mango: Path, item_id: str, m: dict[str, Any], fine: dict[str, str]) -> dict[str, str]:
    words = str(m.get("description") or "").split()
    return {
        "item_id": item_id,
        "image": str((mango / "images" / f"{item_id}.jpg").resolve()),
        "category": str(m["semantic_category"]),
        "title": str(m.get("title") or m.get("url_name") or ""),
        "fine_category": fine.get(str(m.get("category_id")), ""),
        "line": words[0] if words else "",
        "colour": words[-1] if len(words) > 1 else "",
    }


def convert(mango: Path, out: Path, *, outfits: int | None = None, seed: int = 0) -> dict[str, int]:
    meta, fine, sets = read_mango(mango)
    if outfits is not None:
        sets = random.Random(seed).sample(sorted(sets, key=lambda o: str(o["set_id"])), min(outfits, len(sets)))
    used = {str(i["item_id"]) for o in sets for i in o["items"]}
    ids = sorted(meta)
    if outfits is not None:
        spare = random.Random(seed + 1).sample([i for i in ids if i not in used], min(len(used), len(ids) - len(used)))
        ids = sorted(used | set(spare))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "products.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(FIELDS))
        writer.writeheader()
        for item_id in ids:
            writer.writerow(product_row(mango, item_id, meta[item_id], fine))
    with (out / "outfits.jsonl").open("w", encoding="utf-8") as f:
        for o in sets:
            items = [str(i["item_id"]) for i in sorted(o["items"], key=lambda i: int(i["index"]))]
            f.write(json.dumps({"set_id": str(o["set_id"]), "items": items}) + "\n")
    return {"products": len(ids), "outfits": len(sets), "products_in_outfits": len(used)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--mango", type=Path, default=ROOT.parent / "shared" / "data" / "mango-outfits")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--outfits", type=int, default=None, help="keep a seeded sample of this many outfits")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not (args.mango / "polyvore_item_metadata.json").is_file():
        print(f"error: {args.mango} is not the Mango set in Polyvore layout", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(args.out), **convert(args.mango, args.out, outfits=args.outfits, seed=args.seed)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
