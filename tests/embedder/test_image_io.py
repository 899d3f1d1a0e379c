from __future__ import annotations

import image_corpus
import numpy as np
import pytest

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
