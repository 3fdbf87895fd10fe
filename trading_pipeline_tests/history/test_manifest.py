"""The manifest: stable JSON, no rewrite when unchanged, safe under concurrent processes."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trading_pipeline.history.manifest import Manifest, ManifestEntry, ManifestError

WHEN = datetime(2026, 11, 1, 2, 1, tzinfo=UTC)


def entry(key: str, **kw: object) -> ManifestEntry:
    base: dict[str, object] = {
        "url": f"https://data.binance.vision/{key}",
        "market": "spot",
        "symbol": "BTCUSDT",
        "interval": "1h",
        "period": "2024-01",
        "kind": "monthly",
        "sha256": "ab" * 32,
        "size": 1234,
        "etag": '"0123"',
        "last_modified": "2024-02-01T02:01:00.000Z",
        "rows": 744,
        "first_open_time": datetime(2024, 1, 1, tzinfo=UTC),
        "last_open_time": datetime(2024, 1, 31, 23, tzinfo=UTC),
        "gaps": 0,
        "parquet_path": "parquet/market=spot/symbol=BTCUSDT/interval=1h/year=2024/month=01/data.parquet",
        "written_at": WHEN,
    }
    base.update(kw)
    return ManifestEntry(key=key, **base)  # type: ignore[arg-type]


def test_round_trip_with_iso_times(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "manifest.json")
    assert m.load() == {} and m.get("x") is None
    e = entry("data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip")
    m.update([e])
    doc = json.loads(m.path.read_text())
    assert doc["version"] == 1
    stored = doc["files"][e.key]
    assert stored["first_open_time"] == "2024-01-01T00:00:00+00:00"
    assert stored["written_at"] == WHEN.isoformat()
    assert "source" not in stored  # None fields are left out
    assert m.get(e.key) == e
    assert (tmp_path / "manifest.json.lock").exists()


def test_stable_bytes_and_no_rewrite_when_unchanged(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "manifest.json")
    keys = [f"k/{i:02d}" for i in (3, 1, 2)]
    m.update([entry(k) for k in keys])
    text = m.path.read_text()
    assert list(json.loads(text)["files"]) == sorted(keys)
    stat = m.path.stat()
    # same content, later written_at: kept as it was, file not touched
    m.update([entry(k, written_at=datetime(2027, 1, 1, tzinfo=UTC)) for k in reversed(keys)])
    after = m.path.stat()
    assert m.path.read_text() == text
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    # a rendering from another manifest with the same entries is byte-identical
    other = Manifest(tmp_path / "other.json")
    other.update([entry(k) for k in sorted(keys)])
    assert other.path.read_text() == text


def test_changed_entry_replaced_and_remove(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "manifest.json")
    m.update([entry("a"), entry("b"), entry("c")])
    out = m.update([entry("a", sha256="cd" * 32, rows=743)], remove=["b", "nope"])
    assert sorted(out) == ["a", "c"]
    loaded = m.load()
    assert loaded == out
    assert loaded["a"].sha256 == "cd" * 32 and loaded["a"].rows == 743


def test_unknown_fields_survive(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"version": 1, "files": {"a": {"rows": 3, "future_field": [1, 2]}}}))
    m = Manifest(path)
    assert m.get("a") == ManifestEntry(key="a", rows=3, extra={"future_field": [1, 2]})
    m.update([entry("b")])
    assert json.loads(path.read_text())["files"]["a"]["future_field"] == [1, 2]


@pytest.mark.parametrize("content", ["{not json", '{"version": 2, "files": {}}', "[]"])
def test_unreadable_manifest_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ManifestError):
        Manifest(path).load()
    with pytest.raises(ManifestError):
        Manifest(path).update([entry("x")])
    assert path.read_text() == content


def _hammer(path: str, worker: int, n: int) -> None:
    m = Manifest(path)
    for i in range(n):
        m.update([entry(f"w{worker}/{i:03d}", rows=i)], remove=[f"w{worker}/{i - 1:03d}-tmp"])
        m.update([entry(f"w{worker}/{i:03d}-tmp")])


@pytest.mark.slow  # two subprocesses
def test_two_processes_updating_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    n = 40
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(path), w, n)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    files = Manifest(path).load()
    for w in (1, 2):
        assert all(files[f"w{w}/{i:03d}"].rows == i for i in range(n))
        # every temporary entry but the last was removed by the next iteration
        assert [k for k in files if k.startswith(f"w{w}/") and k.endswith("-tmp")] == [
            f"w{w}/{n - 1:03d}-tmp"
        ]
    assert len(files) == 2 * (n + 1)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
