"""Uploaded images: size and type checks, safe decoding, and cached micro-batched embedding.

ImageDecodeError codes map to HTTP statuses (documented in docs/SERVICE.md):
too_large -> 413; not_an_image / unsupported_format -> 415; empty / too_many_pixels / bad_dimensions /
corrupt -> 422.

Decoding runs in the threadpool before the embedding queue admits anything, so its memory is bounded here:
an image whose decoded size (read from its header) is large waits for one of a few `DecodeGate` slots and
never runs on the model thread; small photos neither wait for a slot nor queue behind large ones.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from embedder.config import PreprocessConfig
from embedder.image_io import ImageDecodeError, ImageLimits, decode_image, decoded_pixels
from embedder.preprocess import to_model_input
from service.cache import MeteredCache
from service.cache_keys import embedding_key
from service.engine import Engine
from service.errors import PayloadTooLargeError, ServiceError, UnsupportedMediaTypeError
from service.timing import stage

if TYPE_CHECKING:
    from service.state import AppState

# Browsers and curl send these for files they cannot type; the bytes are checked anyway.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_STATUS_BY_CODE = {"too_large": 413, "not_an_image": 415, "unsupported_format": 415}


class DecodeGate:
    """At most `slots` decodes of images over `large_pixels` at once; smaller ones pass freely."""

    def __init__(self, *, large_pixels: int, slots: int) -> None:
        self.large_pixels = large_pixels
        self._slots = asyncio.Semaphore(slots)

    def is_large(self, upload: Upload) -> bool:
        # The header alone (no pixel data): microseconds, so it runs on the loop before any thread is used.
        return decoded_pixels(upload.data) > self.large_pixels

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


async def read_upload(file: UploadFile, *, label: str, max_bytes: int) -> Upload:
    """Read at most max_bytes (+1 to detect overflow) from a multipart file part."""
    ctype = (file.content_type or "").split(";")[0].strip().lower()
    if ctype not in _GENERIC_TYPES and not ctype.startswith("image/"):
        raise UnsupportedMediaTypeError(
            f"{label}: content type {ctype!r} is not an image; upload a JPEG, PNG or WebP file",
            field=label,
        )
    data = await file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"{label}: image is larger than the {max_bytes}-byte limit", field=label)
    return Upload(name=label, data=data)


def decode_to_input(upload: Upload, *, limits: ImageLimits, preprocess: PreprocessConfig) -> np.ndarray:
    """Bytes -> (3, S, S) float32 model input; bad bytes raise a ServiceError naming the upload."""
    with stage("decode"):
        try:
            img = decode_image(upload.data, limits)
        except ImageDecodeError as e:
            raise ServiceError(
                f"{upload.name}: {e}", code=f"image_{e.code}", status=_STATUS_BY_CODE.get(e.code, 422),
                field=upload.name,
            ) from e
        return to_model_input(img, preprocess)


def _embedding_of(raw: bytes, dim: int, n_classes: int) -> np.ndarray | None:
    """A stored row, or None unless the bytes are `dim` finite float32 values of unit length followed by
    `n_classes` category probabilities (none without a category head)."""
    if len(raw) != (dim + n_classes) * 4:
        return None
    row = np.frombuffer(raw, dtype=np.float32)
    vec, probs = row[:dim], row[dim:]
    if not np.isfinite(row).all() or abs(float(np.dot(vec, vec)) - 1.0) > 1e-3:
        return None
    if n_classes and (probs.min() < 0 or abs(float(probs.sum()) - 1.0) > 1e-3):
        return None
    return row


class UploadEmbeddings(NamedTuple):
    vectors: np.ndarray  # (n, d) normalised embeddings
    cached: list[bool]
    category_probs: np.ndarray | None  # (n, C) from the category head, None without one


async def embed_uploads(
    uploads: list[Upload], *, engine: Engine, cache: MeteredCache, limits: ImageLimits, gate: DecodeGate,
    ttl_s: int,
) -> UploadEmbeddings:
    """Embeddings (and category probabilities) of uploads, reusing cached ones (content hash + model)."""
    dim = engine.backend.card.config.embed_dim
    # One row per upload: the embedding, then the head's probabilities (service.engine.packed_embed_fn packs them so).
    n_classes = len(engine.category_head.classes) if engine.category_head is not None else 0
    out = np.zeros((len(uploads), dim + n_classes), dtype=np.float32)
    cached = [False] * len(uploads)
    todo: list[int] = []
    keys = [embedding_key(model_version=engine.embedding_version, backend_family=engine.backend_family,
                          content_sha256=u.sha256) for u in uploads]
    for i, key in enumerate(keys):
        raw = await cache.get("embedding", key)
        vec = None if raw is None else _embedding_of(raw, dim, n_classes)
        if vec is not None:
            out[i] = vec
            cached[i] = True
        else:
            if raw is not None:
                await cache.discard("embedding", key)
            todo.append(i)
    large = {i for i in todo if gate.is_large(uploads[i])}
    if len(todo) == 1 and not large:
        # The common case, one new photo: decoding joins the forward pass on the model thread when idle.
        upload = uploads[todo[0]]
        engine.batcher.check_room(1)
        with stage("embed"):
            vec = await engine.batcher.embed_prepared(
                functools.partial(decode_to_input, upload, limits=limits, preprocess=engine.preprocess)
            )
        out[todo[0]] = vec
        await cache.set(keys[todo[0]], np.ascontiguousarray(vec, dtype=np.float32).tobytes(), ttl_s)
    elif todo:
        # Refuse before decoding when the queue is full: an overloaded server should not burn CPU on work
        # it will reject. (embed_many checks again: the queue may fill while we decode.)
        engine.batcher.check_room(len(todo))
        # Decoding is CPU work: keep it off the event loop (and fail before queueing anything).
        inputs = []
        for i in todo:
            decode = functools.partial(decode_to_input, uploads[i], limits=limits, preprocess=engine.preprocess)
            if i in large:
                async with gate.slot():
                    inputs.append(await run_in_threadpool(decode))
            else:
                inputs.append(await run_in_threadpool(decode))
        with stage("embed"):
            vecs = await engine.batcher.embed_many(inputs)
        for i, v in zip(todo, vecs, strict=True):
            out[i] = v
            await cache.set(keys[i], np.ascontiguousarray(v, dtype=np.float32).tobytes(), ttl_s)
    return UploadEmbeddings(out[:, :dim], cached, out[:, dim:] if n_classes else None)


async def embed_form_image(
    file: UploadFile, *, state: AppState, engine: Engine, cache: MeteredCache, label: str = "image"
) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """A single-image route's upload: read within limits, embed (cached); (d,) embedding, cache flag and the
    category head's (C,) probabilities (None without a head)."""
    upload = await read_upload(file, label=label, max_bytes=state.settings.max_upload_bytes)
    got = await embed_uploads([upload], engine=engine, cache=cache, limits=state.image_limits,
                              gate=state.decode_gate, ttl_s=state.settings.cache_embedding_ttl_s)
    return got.vectors[0], got.cached[0], None if got.category_probs is None else got.category_probs[0]
