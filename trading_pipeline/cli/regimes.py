"""``trading-pipeline regimes``: the regime periods of one series, as a table or JSON."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_pipeline.cli.options import (
    DataDirOpt,
    DataOpt,
    FromOpt,
    HistoryDirOpt,
    IntervalOpt,
    JsonOpt,
    MarketOpt,
    SymbolOpt,
    ToOpt,
    settings_from,
)
from trading_pipeline.errors import UserInputError

verbs = typer.Typer()
APPS = [(verbs, None)]


def _load_bars(
    data: Path | None,
    symbol: str | None,
    interval: str | None,
    market: str,
    history_dir: Path,
    start: date | None,
    end: date | None,
) -> tuple[Any, str]:
    """All bars up to ``end`` (the ones before ``start`` warm the labeller up)."""
    import polars as pl

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.market.bars import load_bars

    if (data is None) == (symbol is None):
        raise UserInputError("give either --data FILE or --symbol S --interval I")
    if symbol is not None and interval is None:
        raise UserInputError("--symbol needs --interval")
    bars, interval = load_bars(
        symbol=symbol,
        interval=interval,
        start=None,
        end=end,
        market=market,
        history_dir=history_dir,
        data=data,
    )
    if start is not None and bars.filter(pl.col("open_time").dt.date() >= start).height == 0:
        raise UserInputError(f"no candles on or after {start}")
    if bars.height < 2:
        raise UserInputError("fewer than two candles in the requested range")
    return bars, interval


def _interval_of(bars: Any, interval: str | None) -> float:
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.market.schema import bars_per_year
    from trading_pipeline.regimes.base import bars_per_day

    return bars_per_year(interval) if interval else 365.0 * bars_per_day(bars)


@verbs.command("regimes")
def regimes(
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    market: MarketOpt = "spot",
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    data: DataOpt = None,
    labeller: Annotated[str, typer.Option(metavar="NAME", help="rules or gmm")] = "rules",
    as_json: JsonOpt = False,
) -> None:
    """Label the series with market regimes and print its periods and the share of time.

    Bars before ``--from`` are read too: they warm the labeller up, and are not reported.
    """
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.regimes.registry import LABELLERS, get_labeller

    if labeller not in LABELLERS:
        raise UserInputError(f"unknown labeller {labeller!r}: choose one of {', '.join(LABELLERS)}")
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.market.bars import parse_day

    start, end = parse_day(from_, "--from"), parse_day(to, "--to")
    if start and end and start > end:
        raise UserInputError("--from is after --to")
    history = settings_from(data_dir, history_dir).history_dir
    bars, interval = _load_bars(data, symbol, interval, market, history, start, end)

    # lazy: loaded with this verb only, so the command line starts fast
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
