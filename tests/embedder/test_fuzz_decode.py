"""Fuzzing (slow tier): image decoding under mutated input, seeded by the bad-image corpus.

Run with `-m slow`. Each target has a bounded number of derandomised Hypothesis examples (the budget is
FUZZ_EXAMPLES, default 300). The contract: decoding raises only `ImageDecodeError` (or returns an RGB image
within the limits), and preprocessing of what decodes gives a finite model input (the request parsers'
target is tests/service/test_svc_fuzz_parsers.py). A crash found here becomes a regression test beside the
code it broke.
"""

from __future__ import annotations

import os
from typing import Any

import image_corpus
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedder.config import PreprocessConfig
from embedder.image_io import ImageDecodeError, ImageLimits, decode_image, decoded_pixels
from embedder.preprocess import to_model_input

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SEEDS = [data for data, _ in image_corpus.corpus().values() if data] + [
    image_corpus._save(image_corpus.product_photo((300, 40)), "PNG"),
    image_corpus._save(image_corpus.product_photo((2100, 200)), "JPEG"),
]
LIMITS = ImageLimits(max_bytes=2_000_000, max_pixels=4_000_000, max_side=4000, max_aspect=20)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@st.composite
def mutated_images(draw: Any) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(("flip", "truncate", "insert", "header")))
        if not data:
            break
        if op == "flip":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(1, len(data))):]
        elif op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:  # the first 64 bytes hold the dimensions of most formats
            data[draw(st.integers(0, min(63, len(data) - 1)))] = draw(st.integers(0, 255))
    return bytes(data)


@FUZZ
@given(data=mutated_images())
def test_decoding_fails_only_with_image_decode_errors(data: bytes) -> None:
    pixels = decoded_pixels(data)
    assert pixels >= 0
    try:
        img = decode_image(data, LIMITS)
    except ImageDecodeError as e:
        assert e.code and str(e)
        return
    assert img.mode == "RGB" and img.width * img.height <= LIMITS.max_pixels
    assert max(img.size) <= LIMITS.max_side
    cfg = PreprocessConfig(image_size=32)
    x = to_model_input(img, cfg)
    assert x.shape == (3, 32, 32) and np.isfinite(x).all()
