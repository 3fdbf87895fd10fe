"""``manifest.json``: the inventory of every history file the store holds.

One entry per source file (a Binance monthly or daily zip, or an imported file's month): where it
came from, its checksum and listing metadata, and what its Parquet holds. The file is
``{"version": 1, "files": {key: {...}}}`` with sorted keys, so a re-run that changes nothing
leaves the bytes identical (and in fact does not rewrite the file). ``Manifest.update`` holds a
file lock (``manifest.json.lock`` beside it) across read-modify-write and replaces the file
atomically, so concurrent fetches never lose or corrupt each other's entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from trading_pipeline.errors import EnvironmentFault
from trading_pipeline.fsutil import atomic_write_text

MANIFEST_VERSION = 1
_TIME_FIELDS = ("first_open_time", "last_open_time", "last_modified", "written_at")


class ManifestError(EnvironmentFault, ValueError):
    """The manifest file exists but cannot be read (not JSON, or an unknown version): the store
    is damaged, so the CLI prints one line and exits 1."""


def iso(value: datetime | str | None) -> str | None:
    """ISO-8601 text for a datetime (strings pass through unchanged, None stays None)."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


@dataclass(frozen=True)
class ManifestEntry:
    """One file in the store. Times are ISO-8601 strings (datetimes given are converted)."""

    key: str
    url: str | None = None
    market: str | None = None
    symbol: str | None = None
    interval: str | None = None
    period: str | None = None  # "YYYY-MM" (monthly, import) or "YYYY-MM-DD" (daily)
    kind: str | None = None  # "monthly" | "daily" | "import"
    sha256: str | None = None  # of the zip (or of the imported source file)
    size: int | None = None
    etag: str | None = None
    last_modified: str | datetime | None = None
    rows: int | None = None
    first_open_time: str | datetime | None = None
    last_open_time: str | datetime | None = None
    gaps: int | None = None
    missing_bars: int | None = None
    parquet_path: str | None = None
    parquet_sha256: str | None = None
    written_at: str | datetime | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in _TIME_FIELDS:
            object.__setattr__(self, name, iso(getattr(self, name)))
        if self.parquet_path is not None and not isinstance(self.parquet_path, str):
            object.__setattr__(self, "parquet_path", str(self.parquet_path))

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object; None fields are left out, ``extra`` keys merged in."""
        data = {
            k: v for k, v in asdict(self).items() if v is not None and k not in ("extra", "key")
        }
        for k, v in self.extra.items():
            data.setdefault(k, v)
        return data

    @classmethod
    def from_json(cls, key: str, data: Mapping[str, Any]) -> ManifestEntry:
        known = {f.name for f in fields(cls)} - {"extra", "key"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "key"}
        return cls(key=key, extra=extra, **kwargs)

    def same_content(self, other: ManifestEntry) -> bool:
        """Equal apart from ``written_at`` (so an unchanged re-run keeps the old entry)."""
        return replace(self, written_at=None) == replace(other, written_at=None)


class Manifest:
    """The manifest file at ``path``; safe for concurrent updates from several processes."""

    def __init__(self, path: str | Path, *, lock_timeout: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout

    def _lock(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.lock_path), timeout=self.lock_timeout)

    def load(self) -> dict[str, ManifestEntry]:
        """All entries by key (empty when the file does not exist yet)."""
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ManifestError(f"cannot read manifest {self.path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
            raise ManifestError(f"{self.path}: not a version-{MANIFEST_VERSION} manifest")
        files = doc.get("files") or {}
        return {k: ManifestEntry.from_json(k, v) for k, v in files.items()}

    def get(self, key: str) -> ManifestEntry | None:
        return self.load().get(key)

    def update(
        self, entries: Iterable[ManifestEntry], remove: Iterable[str] = ()
    ) -> dict[str, ManifestEntry]:
        """Add or replace ``entries`` and drop the keys in ``remove``, under the file lock.

        An entry identical to the stored one except for ``written_at`` keeps the stored one; if
        nothing changes, the file is not rewritten. Returns the entries now in the manifest.
        """
        new = list(entries)
        gone = list(remove)
        with self._lock():
            merged = self.load()
            changed = False
            for key in gone:
                changed |= merged.pop(key, None) is not None
            for entry in new:
                old = merged.get(entry.key)
                if old is None or not old.same_content(entry):
                    merged[entry.key] = entry
                    changed = True
            if not changed:  # nothing to write: skip rendering the whole document
                return merged
            text = render(merged)
            on_disk = self.path.read_text(encoding="utf-8") if self.path.exists() else None
            if text != on_disk:
                atomic_write_text(self.path, text)
            return merged


def render(entries: Mapping[str, ManifestEntry]) -> str:
    """The manifest document for ``entries``: stable JSON (sorted keys, 2-space indent, newline)."""
    doc = {
        "version": MANIFEST_VERSION,
        "files": {k: entries[k].to_json() for k in sorted(entries)},
    }
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
