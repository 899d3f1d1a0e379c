"""`outfit-compat`: one entry point; each subsystem registers its own subcommands.

Registrar modules import nothing heavy at module level, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from catalog.errors import DatasetError

# Each module exposes `register(subparsers)`; handlers are stored as `func` on the parsed namespace.
REGISTRARS: tuple[str, ...] = (
    "catalog.cli",
    "index.cli",
    "outfit_compat.demo",
    "outfit_compat.export_cli",
    "service.cli",
    "training.cli",
    "training.category_head",
    "training.experiments",
    "training.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outfit-compat", description="Fashion-compatibility embeddings, index and service."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in REGISTRARS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except (DatasetError, FileNotFoundError) as e:
        # Expected user errors: one clear line, no traceback.
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
