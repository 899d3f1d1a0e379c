from __future__ import annotations

import image_corpus
import numpy as np
import pytest
from PIL import Image

from embedder.image_io import ImageDecodeError, ImageLimits, decode_image, load_image_file

CORPUS = image_corpus.corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_decodes_or_fails_with_its_code(name: str) -> None:
    data, expected = CORPUS[name]
    if expected is None:
        img = decode_image(data, ImageLimits(max_pixels=20_000_000))
        assert img.mode == "RGB" and img.width > 0
    else:
        with pytest.raises(ImageDecodeError) as err:
            decode_image(data, ImageLimits(max_pixels=20_000_000))
        assert err.value.code == expected
        assert str(err.value)  # a message a user can act on


def test_exif_orientation_is_applied() -> None:
    img = decode_image(image_corpus.exif_rotated_jpeg())
    assert img.size == (60, 80)
    arr = np.asarray(img)
    # The red marker must be back at the top-left after rotation.
    assert arr[5, 5, 0] > 150 and arr[5, 5, 1] < 90
    assert arr[-5, -5].min() > 200


def test_rgba_transparency_becomes_white() -> None:
    img = decode_image(CORPUS["rgba_png"][0])
    arr = np.asarray(img)
    assert tuple(arr[35, 35]) == (255, 255, 255)  # transparent area
    assert tuple(arr[5, 5]) == (0, 0, 255)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    arr = np.asarray(decode_image(CORPUS["png_16bit"][0]))
    assert 150 < arr[0, 0, 0] < 160  # 40000 / 256 ≈ 156


def test_animated_gif_uses_first_frame() -> None:
    arr = np.asarray(decode_image(CORPUS["animated_gif"][0]))
    assert arr[5, 5, 0] > 150 and arr[5, 5, 1] < 90


def test_byte_limit() -> None:
    with pytest.raises(ImageDecodeError) as err:
        decode_image(image_corpus.jpeg_bytes(), ImageLimits(max_bytes=100))
    assert err.value.code == "too_large"


def test_unsupported_format_rejected() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PPM")
    with pytest.raises(ImageDecodeError) as err:
        decode_image(buf.getvalue())
    assert err.value.code == "unsupported_format"


def test_load_image_file_names_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "x.jpg"
    p.write_bytes(b"garbage")
    with pytest.raises(ImageDecodeError, match=r"x\.jpg"):
        load_image_file(p)
    with pytest.raises(ImageDecodeError) as err:
        load_image_file(tmp_path / "missing.jpg")
    assert err.value.code == "unreadable"


@pytest.mark.parametrize("size", [(16000, 250), (250, 16000), (13000, 1000)])
def test_strips_and_huge_sides_are_refused_before_decoding(size: tuple[int, int]) -> None:
    data = image_corpus._save(Image.new("RGB", size, (9, 9, 9)), "PNG")
    with pytest.raises(ImageDecodeError) as err:
        decode_image(data)
    assert err.value.code == "bad_dimensions" and f"{size[0]}x{size[1]}" in str(err.value)


def test_large_jpeg_is_decoded_at_a_reduced_scale_and_its_cost_is_known_from_the_header() -> None:
    from embedder.image_io import DRAFT_MIN_SIDE, decoded_pixels

    data = image_corpus._save(image_corpus.product_photo((6000, 4000)), "JPEG", quality=80)
    img = decode_image(data)
    assert DRAFT_MIN_SIDE <= max(img.size) < 2 * DRAFT_MIN_SIDE
    assert img.size[0] * 2 == img.size[1] * 3  # aspect kept
    assert decoded_pixels(data) == img.size[0] * img.size[1]
    small = image_corpus.jpeg_bytes((60, 80))
    assert decoded_pixels(small) == 60 * 80 and decode_image(small).size == (60, 80)  # small ones: full size
    assert decoded_pixels(b"not an image") == 0
