"""The bad/odd image corpus every upload path is tested against, generated on the fly (no fixtures on disk).

Each case: name -> (bytes, expected ImageDecodeError code or None when the image must be accepted).
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def product_photo(size: tuple[int, int] = (60, 80), color: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    """A red block on white: easy to check orientation and colour after decoding."""
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(Image.new("RGB", (size[0] // 2, size[1] // 4), color), (0, 0))  # marker at the top-left
    return img


def jpeg_bytes(size: tuple[int, int] = (60, 80)) -> bytes:
    return _save(product_photo(size), "JPEG", quality=90)


def exif_rotated_jpeg() -> bytes:
    """Stored landscape 80x60 with EXIF orientation 6 (rotate 90° CW to view): decodes as 60x80 portrait."""
    stored = product_photo((60, 80)).transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(stored, "JPEG", quality=95, exif=exif.tobytes())


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares huge dimensions (decompression-bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [product_photo(color=c).convert("P") for c in ((200, 30, 30), (30, 200, 30))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def corpus() -> dict[str, tuple[bytes, str | None]]:
    good = jpeg_bytes()
    rgba = Image.new("RGBA", (40, 40), (0, 0, 255, 0))
    rgba.paste(Image.new("RGBA", (20, 20), (0, 0, 255, 255)), (0, 0))
    return {
        "jpeg": (good, None),
        "zero_bytes": (b"", "empty"),
        "text_bytes": (b"this is not an image at all" * 10, "not_an_image"),
        "truncated_jpeg": (good[: len(good) // 2], "corrupt"),
        "huge_declared_png": (png_with_declared_size(100_000, 100_000), "too_many_pixels"),
        "bomb_png": (_save(Image.new("L", (9000, 9000)), "PNG"), "too_many_pixels"),
        "animated_gif": (animated_gif(), None),
        "cmyk_jpeg": (_save(product_photo().convert("CMYK"), "JPEG"), None),
        "png_16bit": (_save(Image.new("I;16", (30, 30), 40000), "PNG"), None),
        "palette_png": (_save(product_photo().convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), None),
        "rgba_png": (_save(rgba, "PNG"), None),
        "exif_rotated_jpeg": (exif_rotated_jpeg(), None),
        "webp": (_save(product_photo(), "WEBP"), None),
    }
