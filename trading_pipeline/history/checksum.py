"""Binance ``.CHECKSUM`` files (``<sha256>  <name>``, with or without a newline) and sha256."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_LINE = re.compile(r"^([0-9a-f]{64})\s+(\S+)\s*$")
_CHUNK = 1 << 20


class ChecksumFormatError(ValueError):
    """A ``.CHECKSUM`` body that is not ``<64 hex>  <file name>``."""


def parse_checksum(body: bytes | str, expected_name: str | None = None) -> str:
    """Return the hex digest of a ``.CHECKSUM`` body; check the file name when given."""
    text = body.decode("ascii", errors="replace") if isinstance(body, bytes) else body
    match = _LINE.match(text.strip("\r\n"))
    if not match:
        raise ChecksumFormatError(f"not a sha256sum line: {text[:120]!r}")
    digest, name = match.groups()
    if expected_name is not None and name != expected_name:
        raise ChecksumFormatError(f"checksum names {name!r}, expected {expected_name!r}")
    return digest


def format_checksum(digest: str, name: str, *, newline: bool = False) -> bytes:
    """The official form: ``<sha256>␠␠<name>``, no trailing newline unless asked."""
    return f"{digest}  {name}{chr(10) if newline else ''}".encode("ascii")


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
