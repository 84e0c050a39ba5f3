"""Media files on disk: random names, written whole or not at all, served by name only."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from townsquare.media.processing import ProcessedImage

# The only names ever served: what new_file_names() produces. Nothing with a slash or dot-dot.
FILE_NAME = re.compile(r"^[0-9a-f]{32}(?:_small)?\.(?:jpg|png|webp)$")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def new_file_names(extension: str) -> tuple[str, str]:
    stem = secrets.token_hex(16)
    return f"{stem}.{extension}", f"{stem}_small.{extension}"


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def write_files(media_dir: Path, image: ProcessedImage) -> tuple[str, str]:
    """Write the original and its preview; returns their file names. Blocking: use a thread."""
    media_dir.mkdir(parents=True, exist_ok=True)
    original_name, small_name = new_file_names(image.extension)
    _write_atomically(media_dir / original_name, image.original.data)
    try:
        _write_atomically(media_dir / small_name, image.small.data)
    except BaseException:
        remove_files(media_dir, [original_name])
        raise
    return original_name, small_name


def remove_files(media_dir: Path, names: list[str]) -> None:
    for name in names:
        if FILE_NAME.match(name):
            (media_dir / name).unlink(missing_ok=True)


def served_path(media_dir: Path, name: str) -> Path | None:
    """The file for ``name`` if it is one of ours and exists, else None."""
    if not FILE_NAME.match(name):
        return None
    path = media_dir / name
    return path if path.is_file() else None


def content_type_for(name: str) -> str:
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]
