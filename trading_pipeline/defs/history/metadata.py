"""Metadata a person reads in the UI: small Markdown tables built from core results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from trading_pipeline.defs.tables import table, tidy
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.market.quality import count_gaps

MAX_TABLE_ROWS = 40


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-style Markdown table (at most ``MAX_TABLE_ROWS`` rows, then a count)."""
    rows = list(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows[:MAX_TABLE_ROWS]]
    if len(rows) > MAX_TABLE_ROWS:
        lines.append(f"\n… and {len(rows) - MAX_TABLE_ROWS} more rows")
    return "\n".join(lines)


def frame_preview(
    df: pl.DataFrame, n: int = 5, columns: Sequence[str] | None = None
) -> dg.TableMetadataValue:
    """The first ``n`` rows of ``df`` as a typed table."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    return table(df.select(cols).head(n), cols)


# ------------------------------------------------------------------ one month of klines

PREVIEW_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "trades")
# what happened to a month's klines partition in a run (or an import)
BUILT = "built"  # written from the month's verified Binance Vision files, content new or changed
UNCHANGED = "unchanged"  # rebuilt from the same files: the same bytes as before
KEPT = "kept"  # no Binance Vision file for the month; the file already there (an import) is kept
NO_DATA = "no data"  # nothing published for the month and no file in the store
IMPORTED = "imported"  # written by `import freqtrade` (reported without a run)


def month_file_metadata(
    path: Path, interval: str, *, status: str, source: str
) -> dict[str, dg.RawMetadataValue]:
    """The metadata of one month's klines file as a run or an import reports it: status, rows,
    first/last bar, gaps, sha256, path, source and a preview; read from the file itself."""
    frame = pl.read_parquet(path)
    gaps, missing = count_gaps(frame, interval) if frame.height else (0, 0)
    metadata: dict[str, dg.RawMetadataValue] = {
        "status": status,
        "source": source,
        "rows": frame.height,
        "gaps": gaps,
        "missing_bars": missing,
        "sha256": sha256_file(path),
        "parquet_path": dg.MetadataValue.path(str(path)),
        "preview": frame_preview(frame, 5, PREVIEW_COLUMNS),
    }
    if frame.height:
        times = frame.get_column("open_time")
        metadata["first_bar"] = dg.MetadataValue.timestamp(_utc(times.min()))
        metadata["last_bar"] = dg.MetadataValue.timestamp(_utc(times.max()))
    return metadata


def _utc(value: Any) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_month_metadata(
    context: dg.AssetExecutionContext, per_month: Mapping[str, Mapping[str, Any]]
) -> None:
    """Give each month of the run its own metadata (a ranged run would otherwise record the
    same metadata on every month)."""
    for key, metadata in per_month.items():
        context.add_asset_metadata(tidy(metadata), partition_key=key)
