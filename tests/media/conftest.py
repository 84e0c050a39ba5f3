"""Real images, made with Pillow in the test, and a helper to upload them."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import httpx
from PIL import Image


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    for x in range(0, size[0], 4):
        image.putpixel((x, x % size[1]), (10, 200, 40))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def jpeg_with_gps_and_rotation() -> bytes:
    """A 40x20 JPEG whose EXIF says "rotate 90°" and carries a camera and GPS position."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels must be rotated 90° clockwise.
    exif[0x010F] = "SecretCam"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.0), 3: "W", 4: (0.0, 7.0, 40.0)}
    return image_bytes("JPEG", (40, 20), exif=exif.tobytes())


def png_with_huge_dimensions(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file whose header claims a gigantic image (a decompression bomb)."""
    data = bytearray(image_bytes("PNG", (1, 1)))
    ihdr = 8  # after the PNG signature: length(4) "IHDR"(4) width(4) height(4) ...
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    chunk = bytes(data[ihdr + 4 : ihdr + 8 + 13])
    data[ihdr + 8 + 13 : ihdr + 8 + 17] = struct.pack(">I", zlib.crc32(chunk))
    return bytes(data)


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    *,
    filename: str = "picture.png",
    content_type: str = "image/png",
    version: str = "v2",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        f"/api/{version}/media",
        files={"file": (filename, content, content_type)},
        data=fields,
    )
