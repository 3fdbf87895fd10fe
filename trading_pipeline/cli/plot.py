"""``trading-pipeline plot``: one backtest as an interactive HTML chart (candles, indicators,
signals, trades, equity beside buy-and-hold) — freqtrade's ``plot-dataframe``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from trading_pipeline.cli.backtest import CashOpt, FillOpt, ParamOpt, _costs, parse_params
from trading_pipeline.cli.options import (
    FEE,
    SLIPPAGE_BPS,
    DataDirOpt,
    DataOpt,
    FeeOpt,
    FromOpt,
    HistoryDirOpt,
    IntervalOpt,
    MarketOpt,
    SlippageOpt,
    StrategyFileOpt,
    SymbolOpt,
    ToOpt,
    bars_from_options,
    family_from_options,
    settings_from,
)
from trading_pipeline.errors import UserInputError

verbs = typer.Typer()
APPS = [(verbs, None)]


@verbs.command("plot")
def plot(
    strategy: Annotated[
        str | None, typer.Option("--strategy", metavar="NAME", help="strategy family")
    ] = None,
    param: ParamOpt = None,
    strategy_file: StrategyFileOpt = None,
    indicator: Annotated[
        list[str] | None,
        typer.Option(
            "--indicator",
            metavar="NAME",
            help="a feature-library indicator to draw (repeatable): sma, ema, bbands, rsi, macd, …",
        ),
    ] = None,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    market: MarketOpt = "spot",
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    data: DataOpt = None,
    cash: CashOpt = 1000.0,
    fee: FeeOpt = FEE,
    slippage_bps: SlippageOpt = SLIPPAGE_BPS,
    fill: FillOpt = "open",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="the .html page (default DATA_DIR/plots/NAME.html)"
        ),
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", metavar="BOT", help="chart a bot's ledger instead of a backtest"),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", metavar="MODE", help="with --ledger: paper or live")
    ] = "paper",
    bots_dir: Annotated[
        Path | None, typer.Option("--bots-dir", metavar="DIR", help="with --ledger: bots folder")
    ] = None,
) -> None:
    """Write an interactive HTML chart of one backtest (or of a bot's ledger) and print its path."""
    if out is not None and out.suffix.lower() != ".html":
        raise UserInputError(f"--out {out}: the chart is an .html page")
    if ledger is not None:
        if strategy is not None:
            raise UserInputError("give --strategy (a backtest) or --ledger BOT, not both")
        print(_plot_ledger(ledger, mode, data_dir, history_dir, bots_dir, market, out))
        return
    if strategy is None:
        raise UserInputError("give --strategy NAME (a backtest) or --ledger BOT")
    import numpy as np

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest import engine
    from trading_pipeline.backtest.costs import RiskRules
    from trading_pipeline.charts.backtest_chart import backtest_figure, write_html
    from trading_pipeline.market.indicators import compute_features
    from trading_pipeline.market.indicators.registry import REGISTRY, select
    from trading_pipeline.strategies.base import LONG_ENTRY, LONG_EXIT, Signals

    names = list(indicator or [])
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        near = sorted(k for k in REGISTRY if k.split("_")[0] in {u.split("_")[0] for u in unknown})
        hint = f" (e.g. {', '.join(near[:6])})" if near else ""
        raise UserInputError(f"unknown indicator {', '.join(unknown)}{hint}")
    fam = family_from_options(strategy, strategy_file)
    params = fam.validate(parse_params(param or []))
    costs = _costs(fee, slippage_bps, fill)
    bars, iv = bars_from_options(
        symbol=symbol, interval=interval, start=from_, end=to, market=market, data=data,
        data_dir=data_dir, history_dir=history_dir,
    )  # fmt: skip
    res = engine.backtest(bars, fam, params, cash=cash, costs=costs, interval=iv, detail=True)
    flags = np.zeros(bars.height, np.int8)
    flags[0] = LONG_ENTRY
    _, bench, _ = engine.run_signals(
        bars, Signals(flags), cash=cash, costs=costs, risk=RiskRules(), interval=iv, detail=True
    )
    signals = fam.signals(bars, params).flags
    lines = {}
    if names:
        feats = compute_features(bars, indicators=names)
        for ind in select(names):
            for col in ind.columns:
                lines[col] = feats[col].to_numpy().astype(float)
    series = f"{market}-{symbol}-{iv}" if symbol else (data.stem if data else iv)
    assert res.equity is not None and bench is not None
    title = (
        f"{fam.name} {params} on {series}: return {res.metrics['total_return']:+.1%}, "
        f"Sharpe {res.metrics['sharpe']:.2f} (buy and hold "
        f"{bench[-1] / cash - 1:+.1%}); fee {fee:.3%} + {slippage_bps:g} bps per side"
    )
    fig = backtest_figure(
        bars, title=title, equity=res.equity, benchmark=bench, trades=res.trades,
        entries=(signals & LONG_ENTRY) != 0, exits=(signals & LONG_EXIT) != 0, indicators=lines,
    )  # fmt: skip
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = (
            settings_from(data_dir).layout.data_dir / "plots" / f"{fam.name}-{series}-{stamp}.html"
        )
    print(write_html(fig, out))


def _plot_ledger(
    bot: str,
    mode: str,
    data_dir: Path | None,
    history_dir: Path | None,
    bots_dir: Path | None,
    market: str,
    out: Path | None,
) -> Path:
    import polars as pl

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.assignment import default_assignment
    from trading_pipeline.bots.deploy_store import DeploymentStore
    from trading_pipeline.bots.ledger import Ledger
    from trading_pipeline.charts.backtest_chart import ledger_figure, write_html
    from trading_pipeline.market.candles import CandleError, load_store

    if mode not in {"paper", "live"}:
        raise UserInputError(f"--mode must be paper or live, got {mode!r}")
    settings = settings_from(data_dir, history_dir, bots_dir)
    path = settings.layout.ledger_path(bot, mode)
    if not path.is_file():
        raise UserInputError(f"no {mode} ledger for {bot} at {path}")
    book = Ledger(path)
    try:
        fills, equity = book.fills(), book.equity()
    finally:
        book.close()
    if equity.height == 0 and fills.height == 0:
        raise UserInputError(f"{bot}'s {mode} ledger has no fills and no equity marks yet")
    first = equity["time"].min() if equity.height else None
    last = equity["time"].max() if equity.height else None
    assigned = DeploymentStore(settings.bots_dir).current(bot) or default_assignment(bot)
    interval = assigned.interval
    bars = {}
    for symbol in sorted(set(fills["symbol"].to_list()) if fills.height else []):
        try:
            frame = load_store(
                settings.history_dir, market=market, symbol=symbol.split(":")[-1],
                interval=interval,
            )  # fmt: skip
        except (CandleError, OSError, ValueError):
            continue
        if first is not None and last is not None:
            frame = frame.filter(pl.col("open_time").is_between(first, last))
        if frame.height:
            bars[symbol] = frame
    fig = ledger_figure(bot, bars, fills, equity)
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = settings.layout.data_dir / "plots" / f"{bot}-{mode}-ledger-{stamp}.html"
    return write_html(fig, out)
