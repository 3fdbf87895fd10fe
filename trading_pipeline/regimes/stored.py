"""The regime labels the ``regime_periods`` step stored, read back for one series.

``regime_periods`` writes, per series and month, the labeller's ``open_time, regime`` frame to
``<features dir>/regime_labels/series=<series key>/month=YYYY-MM/data.parquet``. Discovery and
the selector read those files (instead of labelling the bars again), so the labels they slice
by are exactly the ones the regime step recorded. How a label is applied to a bar stays the
reader's business.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

LABELS_TABLE = "regime_labels"


def labels_dir(features_dir: Path, series_key: str) -> Path:
    """The folder holding one ``month=…/data.parquet`` per labelled month of the series."""
    return Path(features_dir) / LABELS_TABLE / f"series={series_key}"


def stored_months(features_dir: Path, series_key: str) -> list[str]:
    """The months (``YYYY-MM``) whose labels are stored for the series, oldest first."""
    root = labels_dir(features_dir, series_key)
    if not root.is_dir():
        return []
    return sorted(
        p.parent.name.removeprefix("month=")
        for p in root.glob("month=*/data.parquet")
        if p.is_file()
    )


def load_labels(features_dir: Path, series_key: str) -> pl.DataFrame | None:
    """``open_time, regime`` of every stored month of the series, sorted by time (one row per
    bar; a bar stored twice keeps its latest month's label), or None when nothing is stored."""
    root = labels_dir(features_dir, series_key)
    months = stored_months(features_dir, series_key)
    if not months:
        return None
    frames = [
        pl.read_parquet(root / f"month={m}" / "data.parquet", columns=["open_time", "regime"])
        for m in months
    ]
    frames = [f.with_columns(pl.col("regime").cast(pl.String)) for f in frames]
    out = pl.concat(frames, how="vertical")
    return out.unique("open_time", keep="last", maintain_order=True).sort("open_time")
