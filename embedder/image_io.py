"""Safe image decoding for untrusted bytes: every failure is an ImageDecodeError with a reason code."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# 40 MP covers any real product photo; above that we refuse before decoding (decompression bombs).
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 15 * 1024 * 1024
# A product photo is never a 16000x250 strip: such shapes only cost memory and give a useless model input.
DEFAULT_MAX_SIDE = 12_000
DEFAULT_MAX_ASPECT = 20.0
# JPEGs larger than this are decoded at a reduced DCT scale (draft) that keeps the longer side at least this
# long: far above any model input, and a 40 MP photo then costs ~8 MB decoded instead of 120 MB.
DRAFT_MIN_SIDE = 1024
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})


class ImageDecodeError(ValueError):
    """Bytes that are not a usable image. `code` is machine-readable, the message says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_side: int = DEFAULT_MAX_SIDE
    max_aspect: float = DEFAULT_MAX_ASPECT


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparency over white, the studio background products are shot on."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any decoded mode (P, L, I;16, CMYK, RGBA, LA...) -> 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return _flatten_alpha(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clipping everything to white.
        return img.point(lambda v: v / 256).convert("L").convert("RGB")
    return img.convert("RGB")


def decode_image(data: bytes, limits: ImageLimits | None = None) -> Image.Image:
    """Decode untrusted bytes into an RGB image, upright according to its EXIF orientation."""
    limits = limits or ImageLimits()
    if not data:
        raise ImageDecodeError("empty", "the upload is empty (0 bytes); send a JPEG, PNG or WebP image")
    if len(data) > limits.max_bytes:
        raise ImageDecodeError("too_large", f"image is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        raise ImageDecodeError("not_an_image", "bytes are not a recognised image format; send JPEG or PNG") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError("too_many_pixels", f"image declares too many pixels: {e}") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageDecodeError("corrupt", f"image header is truncated or corrupt: {e}") from e
    if img.format not in ALLOWED_FORMATS:
        raise ImageDecodeError("unsupported_format", f"format {img.format} is not accepted; use JPEG or PNG")
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError("bad_dimensions", f"image declares {width}x{height} pixels")
    if width * height > limits.max_pixels:
        raise ImageDecodeError(
            "too_many_pixels",
            f"image declares {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}",
        )
    check_shape(width, height, limits)
    try:
        # Animated images: the first frame shows the product; the rest are ignored.
        img.seek(0)
        # PIL would silently pad a truncated JPEG with grey when LOAD_TRUNCATED_IMAGES is set globally.
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            raise ImageDecodeError("config", "PIL LOAD_TRUNCATED_IMAGES is enabled; refusing to decode")
        if img.format in ("JPEG", "MPO") and max(width, height) >= 2 * DRAFT_MIN_SIDE:
            scale = DRAFT_MIN_SIDE / max(width, height)
            img.draft(img.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # in place: no full-size copy when nothing turns
        return to_rgb(img)
    except ImageDecodeError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ImageDecodeError("corrupt", f"image data is truncated or corrupt: {e}") from e


def check_shape(width: int, height: int, limits: ImageLimits) -> None:
    """Refuse extreme sides and strips before decoding (422 `bad_dimensions`)."""
    longest, shortest = max(width, height), min(width, height)
    if longest > limits.max_side or longest > limits.max_aspect * shortest:
        raise ImageDecodeError(
            "bad_dimensions",
            f"image is {width}x{height}; the longer side may be at most {limits.max_side} px and at most "
            f"{limits.max_aspect:g} times the shorter one; crop or resize it",
        )


def decoded_pixels(data: bytes) -> int:
    """Pixels `decode_image` will hold for these bytes, from the header alone (JPEG draft scale included).

    0 when the header cannot be read (decoding then fails at once, at no cost). Lets a server tell cheap
    decodes from expensive ones before paying for any.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                (width, height), fmt = img.size, img.format
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError):
        return 0
    scale = 1
    if fmt in ("JPEG", "MPO") and max(width, height) >= 2 * DRAFT_MIN_SIDE:
        while scale < 8 and max(width, height) / (2 * scale) >= DRAFT_MIN_SIDE:
            scale *= 2
    return (width // scale) * (height // scale)


def load_image_file(path: Path | str, limits: ImageLimits | None = None) -> Image.Image:
    """Read and decode an image file with the same checks as uploads."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageDecodeError("unreadable", f"cannot read {path}: {e.strerror or e}") from e
    try:
        return decode_image(data, limits)
    except ImageDecodeError as e:
        raise ImageDecodeError(e.code, f"{path}: {e}") from e
