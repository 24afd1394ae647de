"""The one way this package fingerprints things: SHA-256 of bytes, text, JSON values and files."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def bytes_digest(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def text_digest(text: str, length: int = 64) -> str:
    """Hex SHA-256 of `text` (UTF-8), cut to `length` characters."""
    return bytes_digest(text.encode("utf-8"))[:length]


def json_digest(value: Any, length: int = 64) -> str:
    """Hex SHA-256 of a JSON-able value in canonical form (sorted keys), the same in every
    process and every run; values JSON cannot encode are hashed by their str()."""
    return text_digest(json.dumps(value, sort_keys=True, default=str), length)


def file_digest(path: str) -> str:
    """Hex SHA-256 of a file's contents, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
