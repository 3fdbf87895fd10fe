"""``.CHECKSUM`` parsing (with and without a newline) and streamed sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trading_pipeline.history.checksum import (
    ChecksumFormatError,
    format_checksum,
    parse_checksum,
    sha256_file,
)

DIGEST = "dd579c62368ded93d3f01a1904575b932279e32936e181c062763e605793c1c2"
NAME = "BTCUSDT-1m-2020-01-01.zip"


def test_official_form_is_91_bytes_without_newline() -> None:
    body = format_checksum(DIGEST, NAME)
    assert len(body) == 91 and not body.endswith(b"\n")
    assert parse_checksum(body, NAME) == DIGEST
    assert parse_checksum(body + b"\n", NAME) == DIGEST
    assert parse_checksum((body + b"\r\n").decode()) == DIGEST


@pytest.mark.parametrize(
    "body",
    [b"", b"not a checksum", DIGEST[:-1].encode() + b"  " + NAME.encode(), DIGEST.upper().encode()],
)
def test_malformed_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(ChecksumFormatError):
        parse_checksum(body)


def test_file_name_must_match() -> None:
    with pytest.raises(ChecksumFormatError, match="expected"):
        parse_checksum(format_checksum(DIGEST, NAME), "BTCUSDT-1m-2020-01-02.zip")


def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000  # 5 MB: several read chunks
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_real_checksums_verify(real_data: Path) -> None:
    folders = ["lostleaf-binance_datatool", "tommy-ca-binance_datatool"]
    checked = 0
    for folder in folders:
        for checksum in sorted((real_data / folder).rglob("*.CHECKSUM")):
            zip_path = checksum.with_suffix("")
            assert parse_checksum(checksum.read_bytes(), zip_path.name) == sha256_file(zip_path)
            checked += 1
    assert checked >= 5
