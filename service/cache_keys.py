"""Cache keys: versioned, short whatever the request, and scoped to exactly what the cached bytes depend on.

Every key starts with the API version and the cache format, so a deploy that changes a response schema or
the preprocessing behind embeddings never reads what an older build stored in a shared Redis. Results are
keyed by a hash of the canonical (validated, re-serialised) request: a request with 1,000 long `exclude` ids
costs a 64-character digest, not a 200 KB key.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from service.schemas import API_VERSION

# Bump when cached bytes change meaning: embedding layout, response JSON, or the preprocessing
# (c2: resize before padding, JPEG draft decoding, issue 12).
CACHE_FORMAT = "c2"
KEY_VERSION = f"{API_VERSION}/{CACHE_FORMAT}"


def embedding_key(*, model_version: str, backend_family: str, content_sha256: str) -> str:
    """An upload's embedding: the same bytes through the same model and numeric family (fp32 / int8)."""
    return f"{KEY_VERSION}:emb:{model_version}:{backend_family}:{content_sha256}"


def result_key(route: str, scope: str, request: BaseModel) -> str:
    """An id-based answer: route, model + index content identity, and the sha256 of the canonical request."""
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    return f"{KEY_VERSION}:res:{route}:{scope}:{digest}"
