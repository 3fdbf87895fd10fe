"""Metadata that reads well in the Dagster UI: typed tables and rounded numbers.

Dagster's UI renders a ``TableMetadataValue`` inline on the asset page, with its schema (column
types and descriptions) one click away, while a Markdown entry of 1,000 characters or more sits
behind "[Show Markdown]" (``MetadataEntry.tsx`` in dagster-webserver 1.13; 1.13 has no image
metadata type). So every table is ``table(...)``; Markdown is kept for charts and link lists.
A chart is an entry of its own holding only the image: a PNG data URI (self-contained, one
click away: a PNG is far over 1,000 characters) or, for a chart an MLflow run holds, its URL
on the MLflow UI (``artifact_image``: short, so shown inline).

Numbers are rounded for reading: returns, ratios and other measurements to 4 significant
digits, prices and volumes to 8 significant digits with 2 to 8 decimals, parameters and JSON
values to 6 significant digits; non-finite values become empty cells (JSON has no NaN). The
files and MLflow runs keep the exact values.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import dagster as dg
import polars as pl

MAX_TABLE_ROWS = 40
SIGNIFICANT = 4  # measurements: sharpe 1.234, return 0.05300, drawdown -0.1235
JSON_SIGNIFICANT = 6  # parameters and configuration shown as JSON
PRICE_COLUMNS = frozenset(
    {"open", "high", "low", "close", "price", "volume", "quote_volume", "spot", "venue"}
)

# what the recurring columns mean (shown in the table's schema)
DESCRIPTIONS: dict[str, str] = {
    "sharpe": "annualised Sharpe ratio of the bar returns",
    "total_return": "compounded return over the span (0.05 = +5%)",
    "max_drawdown": "largest peak-to-trough fall of equity (negative)",
    "trades": "round trips (entries)",
    "exposure": "share of bars holding a position",
    "bars": "bars in the span",
    "dsr_probability": "deflated Sharpe: probability the Sharpe beats the best of the trials tried",
    "pbo": "probability of backtest overfitting (CSCV)",
    "consistency": "share of test folds with a positive return",
    "oos_sharpe": "out-of-sample Sharpe (the concatenated test windows, one account)",
    "oos_return": "out-of-sample compounded return",
    "bh_sharpe": "buy-and-hold Sharpe over the same span",
    "n_trials": "trials tried over every fold (deflation counts them all)",
    "regime": "market regime (labeller rules)",
    "series": "market-symbol-interval",
    "strategy": "strategy family",
    "sha256": "SHA-256 of the file",
    "open_time": "bar open, UTC",
}


def sig(value: float, digits: int = SIGNIFICANT) -> float | None:
    """``value`` to ``digits`` significant digits (None when not finite)."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def price(value: float) -> float | None:
    """A price or volume: 8 significant digits, at least 2 and at most 8 decimals."""
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    decimals = 8 - 1 - math.floor(math.log10(abs(value)))
    return round(value, max(2, min(8, decimals)))


def when(value: datetime | date) -> str:
    """A UTC time as text: the day alone at midnight, else to the minute (seconds if any)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M" + (":%S" if value.second else ""))
    return value.isoformat()


def cell(value: Any, column: str = "") -> str | int | float | bool | None:
    """One value as a table cell: rounded floats, dates as text, containers as compact JSON."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return price(value) if column in PRICE_COLUMNS else sig(value)
    if isinstance(value, datetime | date):
        return when(value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(rounded(value), sort_keys=True, default=str)
    return str(value)


def _column_type(values: Sequence[Any]) -> str:
    kinds = {dg.TableMetadataValue.infer_column_type(v) for v in values if v is not None}
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "string"


def table(
    rows: Iterable[Mapping[str, Any]] | pl.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    descriptions: Mapping[str, str] | None = None,
    max_rows: int = MAX_TABLE_ROWS,
) -> dg.TableMetadataValue:
    """A typed table of ``rows`` (dicts or a frame), ``columns`` in this order (all of the
    first row's when not given), at most ``max_rows`` rows; each column typed from its values
    and described from ``descriptions`` (then the shared ``DESCRIPTIONS``)."""
    records = list(rows.iter_rows(named=True) if isinstance(rows, pl.DataFrame) else rows)
    if columns is None:
        columns = (
            list(rows.columns)
            if isinstance(rows, pl.DataFrame)
            else list(records[0] if records else [])
        )
    cells = [{c: cell(r.get(c), c) for c in columns} for r in records[:max_rows]]
    known = {**DESCRIPTIONS, **(descriptions or {})}
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c,
                type=_column_type([r[c] for r in cells]) if cells else "string",
                description=known.get(c),
            )
            for c in columns
        ]
    )
    if len(records) > max_rows:
        schema = dg.TableSchema(
            columns=schema.columns,
            constraints=dg.TableConstraints(
                other=[f"first {max_rows} of {len(records)} rows (the file holds them all)"]
            ),
        )
    return dg.MetadataValue.table(records=[dg.TableRecord(r) for r in cells], schema=schema)


def rows_of(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Positional rows as dicts keyed by ``header``."""
    return [dict(zip(header, row, strict=True)) for row in rows]


def rounded(value: Any, digits: int = JSON_SIGNIFICANT) -> Any:
    """``value`` with every float inside (dicts, lists) rounded to ``digits`` significant
    digits; non-finite floats become None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return sig(value, digits)
    if isinstance(value, Mapping):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def tidy(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata with its numbers rounded: plain floats to ``SIGNIFICANT`` digits (non-finite
    ones as text), JSON values to ``JSON_SIGNIFICANT``; everything else unchanged (an explicit
    ``MetadataValue.float`` is taken as already rounded, e.g. money to the cent)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, float):
            out[key] = sig(value) if math.isfinite(value) else str(value)
        elif isinstance(value, dg.JsonMetadataValue) and value.data is not None:
            out[key] = dg.MetadataValue.json(rounded(value.data))
        else:
            out[key] = value
    return out


def image_md(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A chart: its own Markdown entry holding only the image (a PNG data URI).

    The UI shows Markdown inline only under 1,000 characters, so a chart (tens of kB) opens
    from "[Show Markdown]" straight onto the image; the numbers behind it are a table entry."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def artifact_image(ui: str, run_id: str, path: str, alt: str) -> dg.MarkdownMetadataValue:
    """A chart logged to an MLflow run, as an image the MLflow UI at ``ui`` serves
    (``/get-artifact``): a short Markdown entry, so the asset page shows it inline (while the
    MLflow UI runs; else its alt text)."""
    url = f"{ui.rstrip('/')}/get-artifact?path={quote(path)}&run_uuid={quote(run_id)}"
    return dg.MetadataValue.md(f"![{alt}]({url})")
