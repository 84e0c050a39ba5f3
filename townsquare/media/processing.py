"""Turning uploaded bytes into clean images: decode, check, re-encode, thumbnail, blurhash.

Everything here is CPU-bound Pillow work with no I/O of its own; callers run it in a thread.
The real type comes from decoding with Pillow, never from the client's content type or name.
Re-encoding from pixels drops EXIF (GPS included), XMP, ICC and comment chunks.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from townsquare.media.blurhash_encoding import encode_blurhash

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
SUPPORTED_MIME_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Originals above this many pixels are scaled down (Mastodon keeps about 3840x2160).
ORIGINAL_MAX_PIXELS = 3840 * 2160
THUMBNAIL_BOX = (640, 640)
PROFILE_SIZES = {"avatar": (400, 400), "header": (1500, 500)}


class ImageRejected(ValueError):
    """The upload is not an image we accept; the message is safe to show to the user."""


@dataclass(frozen=True)
class Rendition:
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedImage:
    content_type: str
    extension: str
    original: Rendition
    small: Rendition
    blurhash: str


@dataclass(frozen=True)
class _Encoding:
    format: str
    content_type: str
    extension: str


_JPEG = _Encoding("JPEG", "image/jpeg", "jpg")
_PNG = _Encoding("PNG", "image/png", "png")
_WEBP = _Encoding("WEBP", "image/webp", "webp")


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    """Open and fully decode ``data``, refusing anything that is not a bounded, known image."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageRejected("File is not a supported image (JPEG, PNG, GIF or WebP)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("Image dimensions are too large") from None
    width, height = image.size
    # Checked from the header, before any pixel is decoded.
    if width < 1 or height < 1 or width * height > max_pixels:
        raise ImageRejected("Image dimensions are too large")
    try:
        image.seek(0)
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("Image dimensions are too large") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("Image file is damaged or truncated") from None
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )


def _normalise(image: Image.Image) -> Image.Image:
    """Upright pixels in RGB or RGBA with no metadata attached."""
    upright = ImageOps.exif_transpose(image) or image
    mode = "RGBA" if _has_alpha(upright) else "RGB"
    clean = upright.convert(mode) if upright.mode != mode else upright.copy()
    clean.info.clear()
    return clean


def _encoding_for(source_format: str | None, image: Image.Image) -> _Encoding:
    if source_format == "WEBP":
        return _WEBP
    if source_format == "JPEG" and image.mode == "RGB":
        return _JPEG
    return _PNG


def _encode(image: Image.Image, encoding: _Encoding) -> bytes:
    out = io.BytesIO()
    if encoding is _JPEG:
        image.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    elif encoding is _WEBP:
        image.save(out, "WEBP", quality=85, method=4)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _rendition(image: Image.Image, encoding: _Encoding) -> Rendition:
    return Rendition(_encode(image, encoding), image.width, image.height)


def _scaled_to_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    pixels = image.width * image.height
    if pixels <= max_pixels:
        return image
    scale = (max_pixels / pixels) ** 0.5
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _finish(image: Image.Image, encoding: _Encoding) -> ProcessedImage:
    small = image.copy()
    small.thumbnail(THUMBNAIL_BOX, Image.Resampling.LANCZOS)
    return ProcessedImage(
        content_type=encoding.content_type,
        extension=encoding.extension,
        original=_rendition(image, encoding),
        small=_rendition(small, encoding),
        blurhash=encode_blurhash(small),
    )


def process_image(data: bytes, *, max_pixels: int) -> ProcessedImage:
    """A stripped, re-encoded original, a preview within 640x640 and its blurhash.

    GIFs keep their first frame (stored as PNG).
    """
    source = _decode(data, max_pixels)
    source_format = source.format
    image = _scaled_to_pixels(_normalise(source), ORIGINAL_MAX_PIXELS)
    return _finish(image, _encoding_for(source_format, image))


def process_profile_image(data: bytes, kind: str, *, max_pixels: int) -> ProcessedImage:
    """An avatar (400x400) or header (1500x500), cropped around the centre to fill the frame."""
    size = PROFILE_SIZES[kind]
    source = _decode(data, max_pixels)
    source_format = source.format
    image = ImageOps.fit(_normalise(source), size, Image.Resampling.LANCZOS)
    return _finish(image, _encoding_for(source_format, image))
