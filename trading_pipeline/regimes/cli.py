"""``trading-pipeline regimes``: the regime periods of one series, as a table or JSON."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_pipeline.errors import UserInputError


def _parse_date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserInputError(f"{flag} must be a date YYYY-MM-DD, got {value!r}") from None


def _load_bars(
    data: Path | None,
    symbol: str | None,
    interval: str | None,
    market: str,
    data_dir: Path | None,
    start: date | None,
    end: date | None,
) -> Any:
    import polars as pl

    from trading_pipeline.market.candles import CandleError, load_store, read_candle_file
    from trading_pipeline.settings import Settings

    if (data is None) == (symbol is None):
        raise UserInputError("give either --data FILE or --symbol S --interval I")
    try:
        if data is not None:
            bars = read_candle_file(data)
            if end is not None:
                bars = bars.filter(pl.col("open_time").dt.date() <= end)
        else:
            if interval is None:
                raise UserInputError("--symbol needs --interval")
            history = data_dir / "history" if data_dir else Settings.from_env().history_dir
            bars = load_store(
                history,
                market=market,
                symbol=symbol.upper(),  # type: ignore[union-attr]
                interval=interval,
                end=end,
            )
    except CandleError as exc:
        raise UserInputError(str(exc)) from None
    if start is not None and bars.filter(pl.col("open_time").dt.date() >= start).height == 0:
        raise UserInputError(f"no candles on or after {start}")
    if bars.height < 2:
        raise UserInputError("fewer than two candles in the requested range")
    return bars


def _interval_of(bars: Any, interval: str | None) -> float:
    from trading_pipeline.market.schema import bars_per_year
    from trading_pipeline.regimes.base import bars_per_day

    return bars_per_year(interval) if interval else 365.0 * bars_per_day(bars)


def regimes(
    symbol: Annotated[
        str | None, typer.Option(help="e.g. BTCUSDT (from the history store)")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="e.g. 1h")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="first day YYYY-MM-DD")] = None,
    to: Annotated[str | None, typer.Option("--to", help="last day YYYY-MM-DD (inclusive)")] = None,
    market: Annotated[str, typer.Option(help="spot, um or cm")] = "spot",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="data folder (default TP_DATA_DIR)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="candle file: Parquet or freqtrade feather/json")
    ] = None,
    labeller: Annotated[str, typer.Option(help="rules or gmm")] = "rules",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Label the series with market regimes and print its periods and the share of time.

    Bars before ``--from`` are read too: they warm the labeller up, and are not reported.
    """
    from trading_pipeline.regimes.registry import LABELLERS, get_labeller

    if labeller not in LABELLERS:
        raise UserInputError(f"unknown labeller {labeller!r}: choose one of {', '.join(LABELLERS)}")
    start, end = _parse_date(from_, "--from"), _parse_date(to, "--to")
    if start and end and start > end:
        raise UserInputError("--from is after --to")
    bars = _load_bars(data, symbol, interval, market, data_dir, start, end)

    from trading_pipeline.regimes.periods import segment, share

    # Label the whole history up to --to (earlier bars are the labeller's warm-up), then cut.
    labels = get_labeller(labeller).label(bars)
    if start is not None:
        keep = labels.get_column("open_time").dt.date() >= start
        labels, bars = labels.filter(keep), bars.filter(keep)
    periods = segment(labels, bars, bars_per_year=_interval_of(bars, interval))
    shares = share(labels)
    if as_json:
        _print_json(periods, shares, labeller, bars)
    else:
        _print_table(periods, shares, labeller)


def _print_json(periods: Any, shares: dict[str, float], labeller: str, bars: Any) -> None:
    import json
    import math

    rows = []
    for p in periods.iter_rows(named=True):
        rows.append(
            {
                "start": p["start"].isoformat(),
                "end": p["end"].isoformat(),
                "regime": p["regime"],
                "bars": p["bars"],
                "return": p["return"],
                "volatility": None
                if p["volatility"] is None or math.isnan(p["volatility"])
                else p["volatility"],
            }
        )
    out = {
        "labeller": labeller,
        "first_bar": bars["open_time"][0].isoformat(),
        "last_bar": bars["open_time"][-1].isoformat(),
        "bars": bars.height,
        "periods": rows,
        "share": shares,
    }
    print(json.dumps(out))


def _print_table(periods: Any, shares: dict[str, float], labeller: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"regime periods ({labeller})")
    for col in ("start", "end", "regime", "bars", "return", "volatility"):
        table.add_column(
            col, justify="right" if col in {"bars", "return", "volatility"} else "left"
        )
    for p in periods.iter_rows(named=True):
        vol = p["volatility"]
        table.add_row(
            p["start"].strftime("%Y-%m-%d %H:%M"),
            p["end"].strftime("%Y-%m-%d %H:%M"),
            p["regime"],
            str(p["bars"]),
            f"{p['return']:+.1%}",
            "-" if vol is None or vol != vol else f"{vol:.0%}",
        )
    console = Console()
    console.print(table)
    console.print("share of time: " + ", ".join(f"{r} {s:.1%}" for r, s in shares.items()))


def register(app: typer.Typer) -> None:
    """Add this package's verbs to the top-level app."""
    app.command("regimes")(regimes)
