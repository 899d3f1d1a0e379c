"""`outfit-compat serve`: run the REST service with uvicorn (thin wrapper over `serve`)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the REST API and web page for a published index")
    p.add_argument("--index", type=Path, default=None, help="published index root (default: $OUTFIT_INDEX)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="embedder checkpoint (default: $OUTFIT_CHECKPOINT, else the one the index records)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: $OUTFIT_WORKERS or 1)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve)


def serve(*, host: str, port: int, log_level: str = "info", **overrides: Any) -> None:
    """Build Settings from the environment plus `overrides`, then run uvicorn until interrupted."""
    from service.settings import Settings

    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    # Checked before torch and the app are imported, so a wrong path fails in a fraction of a second.
    if settings.index is None:
        raise FileNotFoundError("no index to serve: pass --index DIR or set OUTFIT_INDEX")
    if not settings.index.exists():
        raise FileNotFoundError(f"index directory {settings.index} does not exist")
    if settings.checkpoint is not None and not settings.checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {settings.checkpoint} does not exist")
    import uvicorn

    print(f"serving {settings.index} on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)", flush=True)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False,
                               "limit_concurrency": settings.max_connections,
                               "timeout_keep_alive": settings.keep_alive_s}
    if settings.workers > 1:
        # Worker processes build their own app from the environment: hand them this process's options.
        for name, value in overrides.items():
            if value is not None:
                os.environ[f"OUTFIT_{name.upper()}"] = str(value)
        signal_dir = None
        if settings.reload_signal is None:  # an admin reload must reach every worker (service/reload_signal.py)
            signal_dir = tempfile.mkdtemp(prefix="outfit-compat-")  # private (0700), this service's only
            os.environ["OUTFIT_RELOAD_SIGNAL"] = str(Path(signal_dir) / "reload.json")
        try:
            uvicorn.run("service.app:app_from_env", factory=True, workers=settings.workers, **options)
        finally:
            if signal_dir is not None:
                shutil.rmtree(signal_dir, ignore_errors=True)
        return
    from service.app import create_app

    uvicorn.run(create_app(settings), **options)


def cmd_serve(args: argparse.Namespace) -> int:
    serve(host=args.host, port=args.port, log_level=args.log_level, index=args.index, checkpoint=args.checkpoint,
          workers=args.workers)
    return 0
