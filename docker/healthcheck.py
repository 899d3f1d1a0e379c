"""Container health probe: exit 0 when GET /healthz answers 200, else 1 (Docker HEALTHCHECK contract).

Standard library only, so the slim image needs no curl. The URL follows the server's port
(`UVICORN_PORT`, default 8000) unless `HEALTHCHECK_URL` overrides it.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping


def healthcheck_url(env: Mapping[str, str]) -> str:
    if env.get("HEALTHCHECK_URL"):
        return env["HEALTHCHECK_URL"]
    return f"http://127.0.0.1:{env.get('UVICORN_PORT') or '8000'}/healthz"


def probe(url: str, *, timeout: float) -> tuple[bool, str]:
    """(healthy, reason); any transport error or non-200 status is unhealthy."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as e:
        return False, f"{url} answered HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return False, f"{url} unreachable: {e}"
    return status == 200, f"{url} answered HTTP {status}"


def main() -> int:
    timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT", "4"))
    healthy, reason = probe(healthcheck_url(os.environ), timeout=timeout)
    print(reason, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
