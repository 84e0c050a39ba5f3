"""Our BlurHash encoder agrees with the reference C implementation."""

from __future__ import annotations

import warnings

import blurhash
from PIL import Image

from townsquare.media.blurhash_encoding import encode_blurhash


def test_matches_reference_implementation() -> None:
    image = Image.new("RGB", (32, 24))
    for x in range(32):
        for y in range(24):
            image.putpixel((x, y), (x * 8, y * 10, (x * y) % 256))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = blurhash.encode(image.copy(), x_components=4, y_components=3)
    assert encode_blurhash(image) == expected
    assert blurhash.is_valid_blurhash(expected)


def test_flat_image_has_flat_hash() -> None:
    image = Image.new("RGB", (10, 10), (255, 0, 0))
    result = encode_blurhash(image, 1, 1)
    assert len(result) == 6
