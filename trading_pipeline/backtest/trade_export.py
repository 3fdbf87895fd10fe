"""A backtest's trades as a file (``backtest --export trades``) and back (``show-trades``).

One row per trade: its number, entry and exit time and bar, direction, prices, units, PnL and
return net of costs, bars held, plus the strategy, its parameters and the series, so a file
speaks for itself. CSV or Parquet by the file's suffix; written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_path

FORMATS = (".parquet", ".csv")


def check_export_path(path: Path) -> Path:
    """``path`` if its suffix is a known format; a one-line error otherwise (before any work)."""
    if path.suffix.lower() not in FORMATS:
        raise UserInputError(f"--export-file {path}: use a {' or '.join(FORMATS)} file name")
    if path.exists() and path.is_dir():
        raise UserInputError(f"--export-file {path} is a folder")
    return path


def default_export_path(results_dir: Path, strategy: str, series: str, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return results_dir / f"{strategy}-{series}-{stamp}.parquet"


def trade_table(
    trades: pl.DataFrame, *, strategy: str, params: Mapping[str, Any], series: str
) -> pl.DataFrame:
    """The exported shape of ``trades`` (the engine's trade frame)."""
    table = trades.with_row_index("trade", offset=1).with_columns(
        pl.when(pl.col("exit_bar") >= 0)
        .then(pl.col("exit_bar") - pl.col("entry_bar"))
        .otherwise(None)
        .alias("bars_held"),
        pl.when(pl.col("direction") > 0)
        .then(pl.lit("long"))
        .otherwise(pl.lit("short"))
        .alias("side"),
        pl.lit(strategy).alias("strategy"),
        pl.lit(json.dumps(dict(params), sort_keys=True, default=str)).alias("params"),
        pl.lit(series).alias("series"),
    )
    first = ["trade", "entry_time", "exit_time"] if "entry_time" in table.columns else ["trade"]
    rest = ["side", "entry_bar", "exit_bar", "bars_held", "entry_price", "exit_price", "units",
            "pnl", "return", "strategy", "params", "series"]  # fmt: skip
    return table.select([*first, *rest])


def write_trades(table: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            table.write_csv(tmp)
        else:
            table.write_parquet(tmp)
    return path


def read_trades(path: Path) -> pl.DataFrame:
    """An exported trade file; a one-line error when it is missing or not one."""
    if not path.is_file():
        raise UserInputError(f"no trade file {path}")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserInputError(f"{path}: not a .parquet or .csv trade file")
    try:
        table = (
            pl.read_csv(path, try_parse_dates=True) if suffix == ".csv" else pl.read_parquet(path)
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserInputError(f"{path}: cannot read it as a trade file ({exc})") from None
    missing = {"trade", "pnl", "return", "side"} - set(table.columns)
    if missing:
        raise UserInputError(f"{path}: not a trade export (no {', '.join(sorted(missing))})")
    return table


def summary(table: pl.DataFrame) -> dict[str, Any]:
    """Trades, wins, win rate, total and average PnL, best and worst return, mean bars held."""
    closed = (
        table.filter(pl.col("bars_held").is_not_null()) if "bars_held" in table.columns else table
    )
    n = table.height
    wins = int((table["pnl"] > 0).sum()) if n else 0
    return {
        "trades": n,
        "closed": closed.height,
        "wins": wins,
        "win_rate": wins / n if n else None,
        "total_pnl": float(table["pnl"].sum()) if n else 0.0,
        "mean_return": float(table["return"].mean()) if n else None,  # type: ignore[arg-type]
        "best_return": float(table["return"].max()) if n else None,  # type: ignore[arg-type]
        "worst_return": float(table["return"].min()) if n else None,  # type: ignore[arg-type]
        "mean_bars_held": float(closed["bars_held"].mean()) if closed.height else None,  # type: ignore[arg-type]
    }
