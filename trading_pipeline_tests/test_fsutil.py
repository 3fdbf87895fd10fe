"""Atomic writes: all or nothing under the final name, and readable like any other file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from trading_pipeline.fsutil import atomic_path, atomic_write_text


def test_atomic_write_publishes_a_world_readable_file(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "a" / "b.json", "{}\n")
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
