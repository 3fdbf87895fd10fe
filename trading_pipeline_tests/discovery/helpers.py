"""Seeded bars, a small Parquet store and the CLI entry for the discovery tests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.market.schema import INTERVAL_MS, conform


def random_walk_bars(
    n: int, *, seed: int, vol: float = 0.01, drift: float = 0.0, interval: str = "1h"
) -> pl.DataFrame:
    """A pure (geometric) random walk in the canonical kline schema: no strategy has an edge."""
    rng = np.random.default_rng(seed)
    r = drift + vol * rng.standard_normal(n)
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    wiggle = np.abs(rng.standard_normal((2, n))) * vol * 0.5
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    step = timedelta(milliseconds=INTERVAL_MS[interval])
    start = datetime(2021, 1, 1, tzinfo=UTC)
    times = [start + i * step for i in range(n)]
    volume = rng.lognormal(3.0, 0.4, n)
    return conform(
        pl.DataFrame(
            {
                "open_time": times,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
                "close_time": [t + step - timedelta(microseconds=1) for t in times],
                "quote_volume": volume * close,
                "trades": rng.integers(10, 100, n),
            }
        )
    )


def write_store(history_dir: Path, bars: pl.DataFrame, series: Series) -> list[Path]:
    """Write ``bars`` as the hive-partitioned monthly Parquet files of ``series``."""
    layout = HistoryLayout(history_dir)
    out = []
    keyed = bars.with_columns(
        pl.col("open_time").dt.year().alias("_y"), pl.col("open_time").dt.month().alias("_m")
    )
    for (year, month), part in keyed.group_by(["_y", "_m"], maintain_order=True):
        path = layout.parquet_path(series, int(year), int(month))  # type: ignore[call-overload]
        path.parent.mkdir(parents=True, exist_ok=True)
        part.drop("_y", "_m").write_parquet(path)
        out.append(path)
    return out


def cli_main(argv: list[str]) -> int:
    """``trading-pipeline`` in-process."""
    from trading_pipeline import cli

    return cli.main(argv)


CLI_SNIPPET = (
    "import sys; from trading_pipeline_tests.discovery.helpers import cli_main; "
    "sys.exit(cli_main(sys.argv[1:]))"
)


def cli_process(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI in a subprocess (same interpreter), stdout/stderr captured."""
    root = Path(__file__).resolve().parents[2]
    full_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", CLI_SNIPPET, *argv],
        cwd=root,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
