"""Metadata a person reads in the UI: small Markdown tables built from core results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import polars as pl

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


def frame_preview(df: pl.DataFrame, n: int = 5, columns: Sequence[str] | None = None) -> str:
    """The first ``n`` rows of ``df`` as a Markdown table."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    head = df.select(cols).head(n)
    return markdown_table(cols, head.iter_rows())
