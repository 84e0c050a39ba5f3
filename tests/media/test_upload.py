"""Uploading images: what is accepted, what is refused, and what is stored."""

from __future__ import annotations

import io
from pathlib import Path

import blurhash
import httpx
from PIL import Image

from tests.conftest import Person
from tests.media.conftest import (
    image_bytes,
    jpeg_with_gps_and_rotation,
    png_with_huge_dimensions,
    upload,
)
from townsquare.config import Settings


def stored_files(settings: Settings) -> list[Path]:
    media_dir = Path(settings.media_dir)
    return sorted(media_dir.iterdir()) if media_dir.is_dir() else []


def served_path(url: str) -> str:
    return "/media/" + url.rsplit("/media/", 1)[1]


async def fetch_image(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, Image.Image]:
    response = await client.get(served_path(url))
    assert response.status_code == 200
    return response, Image.open(io.BytesIO(response.content))


async def test_png_upload_gives_a_media_attachment(
    alice: Person, client: httpx.AsyncClient
) -> None:
    response = await upload(
        alice.client, image_bytes("PNG", (1280, 720)), description="A red field"
    )
    assert response.status_code == 200, response.text
    media = response.json()
    assert media["type"] == "image"
    assert isinstance(media["id"], str)
    assert media["description"] == "A red field"
    assert media["remote_url"] is None and media["text_url"] is None
    assert media["meta"]["original"] == {
        "width": 1280,
        "height": 720,
        "size": "1280x720",
        "aspect": 1280 / 720,
    }
    small = media["meta"]["small"]
    assert max(small["width"], small["height"]) <= 640
    assert media["meta"]["focus"] == {"x": 0.0, "y": 0.0}
    assert blurhash.is_valid_blurhash(media["blurhash"])

    response, original = await fetch_image(client, media["url"])
    assert response.headers["content-type"] == "image/png"
    assert "immutable" in response.headers["cache-control"]
    assert original.size == (1280, 720)
    response, preview = await fetch_image(client, media["preview_url"])
    assert preview.size == (small["width"], small["height"]) == (640, 360)


async def test_jpeg_exif_and_gps_are_stripped_after_rotation(
    alice: Person, client: httpx.AsyncClient
) -> None:
    source = jpeg_with_gps_and_rotation()
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(0x8825)  # the test file has GPS

    response = await upload(alice.client, source, filename="holiday.jpg", content_type="image/jpeg")
    assert response.status_code == 200, response.text
    media = response.json()
    assert (media["meta"]["original"]["width"], media["meta"]["original"]["height"]) == (20, 40)

    served, stored = await fetch_image(client, media["url"])
    assert served.headers["content-type"] == "image/jpeg"
    assert stored.size == (20, 40)
    assert not stored.getexif()
    assert "exif" not in stored.info
    assert b"SecretCam" not in served.content
    _, preview = await fetch_image(client, media["preview_url"])
    assert not preview.getexif()


async def test_v1_upload_and_webp_and_gif_are_accepted(alice: Person) -> None:
    webp = await upload(alice.client, image_bytes("WEBP"), version="v1", filename="a.webp")
    assert webp.status_code == 200, webp.text
    assert webp.json()["url"].endswith(".webp")
    gif = await upload(alice.client, image_bytes("GIF"), filename="a.gif", content_type="image/gif")
    assert gif.status_code == 200, gif.text
    assert gif.json()["url"].endswith(".png")


async def test_the_real_type_decides_not_the_name(alice: Person) -> None:
    response = await upload(alice.client, b"just some text, honestly\n" * 10, filename="cat.png")
    assert response.status_code == 422
    assert "not a supported image" in response.json()["error"]

    bmp = await upload(alice.client, image_bytes("BMP"), filename="cat.png")
    assert bmp.status_code == 422

    # A JPEG called .png with a PNG content type is still a JPEG.
    jpeg = await upload(alice.client, image_bytes("JPEG"), filename="cat.png")
    assert jpeg.status_code == 200
    assert jpeg.json()["url"].endswith(".jpg")


async def test_truncated_image_is_refused(alice: Person) -> None:
    data = image_bytes("PNG", (300, 300))
    response = await upload(alice.client, data[: len(data) // 2])
    assert response.status_code == 422


async def test_decompression_bomb_is_refused(alice: Person, settings: Settings) -> None:
    response = await upload(alice.client, png_with_huge_dimensions())
    assert response.status_code == 422
    assert "too large" in response.json()["error"]

    settings.max_image_pixels = 100 * 100
    response = await upload(alice.client, image_bytes("PNG", (101, 100)))
    assert response.status_code == 422


async def test_oversized_upload_is_refused_and_nothing_is_stored(
    alice: Person, settings: Settings
) -> None:
    settings.max_image_bytes = 10_000
    big = image_bytes("BMP", (200, 200))
    assert len(big) > 10_000
    response = await upload(alice.client, big)
    assert response.status_code == 413

    # Just over the file limit, but within the form overhead allowed in Content-Length.
    response = await upload(alice.client, b"\x89PNG" + b"\0" * 10_100)
    assert response.status_code == 413
    assert stored_files(settings) == []


async def test_chunked_upload_without_length_is_capped(alice: Person, settings: Settings) -> None:
    settings.max_image_bytes = 10_000
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + b"\0" * 200_000 + b"\r\n--b--\r\n"
    )

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = await alice.client.post(
        "/api/v2/media",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413


async def test_upload_fields_are_validated(alice: Person) -> None:
    png = image_bytes()
    assert (await upload(alice.client, png, description="x" * 1501)).status_code == 422
    assert (await upload(alice.client, png, focus="2,0")).status_code == 422
    assert (await upload(alice.client, png, focus="left")).status_code == 422
    missing = await alice.client.post("/api/v2/media", data={"description": "no file"})
    assert missing.status_code == 422
    ok = await upload(alice.client, png, focus="0.5,-0.25", thumbnail="ignored")
    assert ok.status_code == 200
    assert ok.json()["meta"]["focus"] == {"x": 0.5, "y": -0.25}


async def test_upload_needs_a_user(client: httpx.AsyncClient) -> None:
    response = await upload(client, image_bytes())
    assert response.status_code == 401
