"""Backtest verbs: ``backtest`` (one parameter set), ``sweep`` (a grid) and ``lookahead``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trading_pipeline.cli.options import (
    FEE,
    SLIPPAGE_BPS,
    DataDirOpt,
    DataOpt,
    FeeOpt,
    FromOpt,
    HistoryDirOpt,
    IntervalOpt,
    JsonOpt,
    MarketOpt,
    SlippageOpt,
    StrategyFileOpt,
    StrategyOpt,
    SymbolOpt,
    ToOpt,
    bars_from_options,
    family_from_options,
    finite,
    positive,
    settings_from,
)
from trading_pipeline.errors import UserInputError

if TYPE_CHECKING:
    from trading_pipeline.strategies.base import StrategyFamily

verbs = typer.Typer()
APPS = [(verbs, None)]

ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", metavar="NAME=VALUE", help="a parameter, repeatable")
]
CashOpt = Annotated[
    float, typer.Option("--cash", callback=positive, metavar="USD", help="starting cash")
]
FillOpt = Annotated[
    str, typer.Option("--fill", metavar="WHEN", help="open (next bar) or close (signal bar)")
]
SizeOpt = Annotated[
    float,
    typer.Option(
        "--size", callback=positive, metavar="FRACTION", help="position size, fraction of equity"
    ),
]
StopOpt = Annotated[
    float | None,
    typer.Option(
        "--stop-loss",
        callback=finite,
        metavar="FRACTION",
        help="stop-loss, fraction below the entry",
    ),
]
TakeOpt = Annotated[
    float | None,
    typer.Option(
        "--take-profit",
        callback=finite,
        metavar="FRACTION",
        help="take-profit, fraction above the entry",
    ),
]
TrailOpt = Annotated[
    float | None,
    typer.Option(
        "--trailing-stop",
        callback=finite,
        metavar="FRACTION",
        help="fraction below the best price since entry",
    ),
]
HoldOpt = Annotated[
    int | None, typer.Option("--max-holding-bars", min=1, metavar="N", help="exit after N bars")
]
ShortOpt = Annotated[
    bool, typer.Option("--allow-short", help="take short entries (markets that allow shorting)")
]


def parse_params(items: list[str]) -> dict[str, str]:
    """``k=v`` strings to a dict (values stay strings; the search space coerces them)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--param must look like name=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def parse_grid(family: StrategyFamily, items: list[str]) -> dict[str, list[Any]]:
    """``k=start:stop[:step]`` (inclusive) or ``k=a,b,c`` or ``k=v`` to value lists."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.strategies.base import stepped

    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, spec = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserInputError(f"--grid must look like name=start:stop[:step], got {item!r}")
        p = family.space.param(key)
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) not in (2, 3):
                raise UserInputError(f"--grid {key}: use start:stop[:step], got {spec!r}")
            try:
                nums = [float(x) for x in parts]
            except ValueError:
                raise UserInputError(f"--grid {key}: numbers expected, got {spec!r}") from None
            step = nums[2] if len(parts) == 3 else (p.step or 1.0)
            out[key] = stepped(nums[0], nums[1], step, integer=p.kind == "int")
        else:
            out[key] = [v.strip() for v in spec.split(",") if v.strip()]
    return out


def _costs(fee: float, slippage_bps: float, fill: str) -> Any:
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest.costs import CostModel

    return CostModel(fee=fee, slippage_bps=slippage_bps, fill=fill)  # type: ignore[arg-type]


def _risk(
    size: float,
    stop_loss: float | None,
    take_profit: float | None,
    trailing_stop: float | None,
    max_holding_bars: int | None,
    allow_short: bool,
) -> Any:
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest.costs import RiskRules

    return RiskRules(
        size=size,
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_stop=trailing_stop,
        max_holding_bars=max_holding_bars,
        allow_short=allow_short,
    )


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _fmt(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if name in {"total_return", "cagr", "max_drawdown", "win_rate", "avg_trade", "exposure"}:
        return f"{value * 100:.2f} %"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.4f}"


@verbs.command()
def backtest(
    strategy: StrategyOpt,
    param: ParamOpt = None,
    strategy_file: StrategyFileOpt = None,
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
    size: SizeOpt = 1.0,
    stop_loss: StopOpt = None,
    take_profit: TakeOpt = None,
    trailing_stop: TrailOpt = None,
    max_holding_bars: HoldOpt = None,
    allow_short: ShortOpt = False,
    export: Annotated[
        str | None,
        typer.Option("--export", metavar="WHAT", help="trades: write the trade list to a file"),
    ] = None,
    export_file: Annotated[
        Path | None,
        typer.Option(
            "--export-file",
            metavar="FILE",
            help="where --export writes (.parquet or .csv; default "
            "DATA_DIR/backtest_results/STRATEGY-SERIES-TIME.parquet)",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Backtest one parameter set, beside buy-and-hold on the same bars."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest import engine
    from trading_pipeline.backtest.metrics import METRICS, json_safe
    from trading_pipeline.backtest.trade_export import check_export_path

    if export not in (None, "trades"):
        raise UserInputError(f"--export {export!r}: only 'trades' can be exported")
    if export_file is not None:
        if export is None:
            raise UserInputError("--export-file needs --export trades")
        check_export_path(export_file)
    fam = family_from_options(strategy, strategy_file)
    params = fam.validate(parse_params(param or []))
    costs = _costs(fee, slippage_bps, fill)
    risk = _risk(size, stop_loss, take_profit, trailing_stop, max_holding_bars, allow_short)
    bars, iv = bars_from_options(
        symbol=symbol,
        interval=interval,
        start=from_,
        end=to,
        market=market,
        data=data,
        data_dir=data_dir,
        history_dir=history_dir,
    )
    res = engine.backtest(
        bars, fam, params, cash=cash, costs=costs, risk=risk, interval=iv, detail=bool(export)
    )
    bh = engine.buy_and_hold(bars, cash=cash, costs=costs, interval=iv)
    exported = None
    if export:
        series = f"{market}-{symbol}-{iv}" if symbol else (data.stem if data else iv)
        exported = _export_trades(res, fam.name, params, series, export_file, data_dir)
    if json_:
        doc = {
            "strategy": fam.name,
            "version": fam.version,
            "params": params,
            "interval": iv,
            "bars": res.bars,
            "start": str(bars["open_time"][0]),
            "end": str(bars["open_time"][-1]),
            "cash": cash,
            "costs": {"fee": fee, "slippage_bps": slippage_bps, "fill": fill},
            "risk": dataclasses.asdict(risk),
            **res.metrics,
            "buy_and_hold": bh,
        }
        if exported is not None:
            doc["trades_file"] = str(exported)
        print(json.dumps(json_safe(doc)))
        return
    title = (
        f"{fam.name} v{fam.version} {params} — {res.bars} bars {iv}, "
        f"{bars['open_time'][0]} → {bars['open_time'][-1]}"
    )
    rows = [[m, _fmt(m, res.metrics[m]), _fmt(m, bh[m])] for m in METRICS]
    _print_table(title, ["metric", fam.name, "buy_and_hold"], rows)
    if exported is not None:
        print(f"trades written to {exported} (trading-pipeline show-trades {exported})")


def _export_trades(
    res: Any,
    strategy: str,
    params: dict[str, Any],
    series: str,
    export_file: Path | None,
    data_dir: Path | None,
) -> Path:
    from datetime import UTC, datetime

    import polars as pl

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest.metrics import TRADE_FIELDS
    from trading_pipeline.backtest.trade_export import (
        default_export_path,
        trade_table,
        write_trades,
    )

    trades = res.trades if res.trades is not None else pl.DataFrame()
    path = export_file or default_export_path(
        settings_from(data_dir).layout.backtest_results_dir, strategy, series, datetime.now(UTC)
    )
    if trades.height == 0:
        trades = pl.DataFrame(schema={f: pl.Float64 for f in TRADE_FIELDS}).with_columns(
            pl.col("entry_bar", "exit_bar", "direction").cast(pl.Int64)
        )
    return write_trades(trade_table(trades, strategy=strategy, params=params, series=series), path)


@verbs.command("show-trades")
def show_trades(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a file from backtest --export")],
    tail: Annotated[
        int, typer.Option("--tail", metavar="N", help="show the last N trades (0: all)")
    ] = 20,
    json_: JsonOpt = False,
) -> None:
    """The trades of an exported backtest, with a summary (win rate, PnL, best/worst)."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest.metrics import json_safe
    from trading_pipeline.backtest.trade_export import read_trades, summary

    if tail < 0:
        raise UserInputError("--tail must be >= 0")
    table = read_trades(file)
    shown = table.tail(tail) if tail else table
    info = summary(table)
    if json_:
        docs = [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
            for r in shown.iter_rows(named=True)
        ]
        print(json.dumps(json_safe({"file": str(file), "summary": info, "trades": docs})))
        return
    cols: list[str] = [c for c in ("trade", "entry_time", "exit_time", "side", "bars_held", "entry_price",
                        "exit_price", "pnl", "return") if c in shown.columns]  # fmt: skip
    rows = [[_cell(r[c], c) for c in cols] for r in shown.iter_rows(named=True)]
    strategy = table["strategy"][0] if "strategy" in table.columns and table.height else "?"
    _print_table(f"{file.name}: {strategy}", cols, rows)
    win = "-" if info["win_rate"] is None else f"{info['win_rate']:.1%}"
    print(
        f"{info['trades']} trades, {info['wins']} won ({win}), total PnL {info['total_pnl']:+.2f}"
        + ("" if info["best_return"] is None else
           f", best {info['best_return']:+.2%}, worst {info['worst_return']:+.2%}")
    )  # fmt: skip


def _cell(value: Any, col: str) -> str:
    if value is None:
        return "-"
    if col == "return":
        return f"{value:+.2%}"
    if col in {"pnl", "entry_price", "exit_price"}:
        return f"{value:,.4f}" if col != "pnl" else f"{value:+,.2f}"
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M"))
    return str(value)


SWEEP_PARTS = 20  # pieces of the grid with a progress bar (one fused call each)


def _run_grid(engine: Any, bars: Any, fam: Any, combos: list[dict[str, Any]], **kw: Any) -> Any:
    """``engine.run_grid`` over ``combos``: in one call, or, when a progress bar is shown, in
    up to ``SWEEP_PARTS`` consecutive pieces (same rows, same order) with the bar advancing."""
    import numpy as np

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.cli.progress import progress_bar

    with progress_bar(f"sweep {fam.name}: {len(combos):,} combos × {bars.height:,} bars") as bar:
        if bar is None or len(combos) < 2:
            res = engine.run_grid(bars, fam, combos, **kw)
            if bar is not None:
                bar(len(combos), len(combos))
            return res
        size = -(-len(combos) // SWEEP_PARTS)
        bar(0, len(combos))
        parts = []
        for i in range(0, len(combos), size):
            parts.append(engine.run_grid(bars, fam, combos[i : i + size], **kw))
            bar(min(i + size, len(combos)), len(combos))
    first = parts[0]
    return engine.GridResult(
        first.family,
        first.version,
        [p for part in parts for p in part.params],
        {m: np.concatenate([part.metrics[m] for part in parts]) for m in first.metrics},
        first.bars,
        sum(part.seconds for part in parts),
        all(part.fused for part in parts),
    )


@verbs.command()
def sweep(
    strategy: StrategyOpt,
    grid: Annotated[
        list[str] | None, typer.Option("--grid", help="name=start:stop[:step] or name=a,b")
    ] = None,
    strategy_file: StrategyFileOpt = None,
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
    top: Annotated[int, typer.Option("--top", min=1, help="rows to show, best Sharpe first")] = 10,
    size: SizeOpt = 1.0,
    stop_loss: StopOpt = None,
    take_profit: TakeOpt = None,
    trailing_stop: TrailOpt = None,
    max_holding_bars: HoldOpt = None,
    allow_short: ShortOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Backtest every combination of a parameter grid; rank by Sharpe."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest import engine
    from trading_pipeline.backtest.metrics import json_safe
    from trading_pipeline.discovery.gate import require_no_lookahead

    fam = family_from_options(strategy, strategy_file)
    axes = parse_grid(fam, grid or [])
    combos = fam.grid(**axes)
    if not combos:
        raise UserInputError("the grid is empty (no combination satisfies the constraints)")
    if top < 1:
        raise UserInputError(f"--top must be at least 1, got {top}")
    costs = _costs(fee, slippage_bps, fill)
    risk = _risk(size, stop_loss, take_profit, trailing_stop, max_holding_bars, allow_short)
    bars, iv = bars_from_options(
        symbol=symbol,
        interval=interval,
        start=from_,
        end=to,
        market=market,
        data=data,
        data_dir=data_dir,
        history_dir=history_dir,
    )
    # a leaky family is not swept (an in-sample sweep writes nothing, so nothing is cached)
    require_no_lookahead(fam, bars, cache_dir=None, data=iv)
    # compile outside the timed evaluation (numba caches to disk; this is a tiny warm-up)
    engine.run_grid(
        bars.head(min(bars.height, 64)), fam, combos[:1], cash=cash, costs=costs, interval=iv
    )
    res = _run_grid(engine, bars, fam, combos, cash=cash, costs=costs, risk=risk, interval=iv)
    bh = engine.buy_and_hold(bars, cash=cash, costs=costs, interval=iv)
    order = res.order("sharpe")
    rate = len(res) / res.seconds if res.seconds > 0 else float("inf")
    dsr = _in_sample_dsr(engine, bars, fam, res, int(order[0]), cash, costs, risk, iv)
    if json_:
        doc = {
            "strategy": fam.name,
            "version": fam.version,
            "interval": iv,
            "combos": len(res),
            "bars": res.bars,
            "seconds": res.seconds,
            "combos_per_second": rate,
            "costs": {"fee": fee, "slippage_bps": slippage_bps, "fill": fill},
            "results": [res.row(int(k)) for k in order],
            "top": [res.row(int(k)) for k in order[:top]],
            "buy_and_hold": bh,
            "in_sample": True,  # every combination scored on the same bars: no test window
            "deflated_sharpe": dsr,
        }
        print(json.dumps(json_safe(doc)))
        return
    names = list(axes) or list(combos[0])
    cols = ["#", *names, "sharpe", "total_return", "max_drawdown", "trades", "final_equity"]
    rows = []
    for rank, k in enumerate(order[:top], 1):
        r = res.row(int(k))
        rows.append(
            [
                str(rank),
                *[str(r["params"][n]) for n in names],
                *[_fmt(m, r[m]) for m in cols[len(names) + 1 :]],
            ]
        )
    rows.append(["B&H", *["" for _ in names], *[_fmt(m, bh[m]) for m in cols[len(names) + 1 :]]])
    _print_table(
        f"{fam.name}: {len(res)} combos × {res.bars} bars in {res.seconds:.3f} s "
        f"({rate:,.0f} combos/s) — IN-SAMPLE: every row was scored on the bars it was chosen on",
        cols,
        rows,
    )
    print(
        f"in-sample deflated Sharpe probability of the best row over {dsr['n_trials']} "
        f"combinations tried: {dsr['probability']:.2f} (needs ≥ 0.95; luck alone reaches a "
        f"per-bar Sharpe of {dsr['benchmark']:.4f}). Use `tune` for out-of-sample results."
    )


def _in_sample_dsr(
    engine: Any,
    bars: Any,
    fam: StrategyFamily,
    res: Any,
    best: int,
    cash: float,
    costs: Any,
    risk: Any,
    interval: str,
) -> dict[str, float | int]:
    """The best row's Sharpe deflated for the grid's size (Bailey & López de Prado): every
    combination is a trial, their Sharpe ratios' variance (all on the same bars) the paper's."""
    # lazy: loaded with this verb only, so the command line starts fast
    import math

    import numpy as np

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.discovery.robustness import deflated_sharpe_ratio
    from trading_pipeline.market.schema import bars_per_year

    one = engine.backtest(
        bars,
        fam,
        res.row(best)["params"],
        cash=cash,
        costs=costs,
        risk=risk,
        interval=interval,
        detail=True,
    )
    equity = np.asarray(one.equity, dtype=float)
    returns = equity[1:] / equity[:-1] - 1.0
    per_bar = np.asarray(res.metrics["sharpe"], dtype=float) / math.sqrt(bars_per_year(interval))
    d = deflated_sharpe_ratio(returns, trial_sharpes=per_bar, n_trials=len(res))
    return {
        "probability": d.probability,
        "sharpe_per_bar": d.sharpe,
        "benchmark": d.benchmark,
        "n_trials": int(d.n_trials),
    }


@verbs.command()
def lookahead(
    strategy: StrategyOpt,
    strategy_file: StrategyFileOpt = None,
    param: ParamOpt = None,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    market: MarketOpt = "spot",
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    data: DataOpt = None,
    samples: Annotated[
        int, typer.Option("--samples", min=0, help="seeded random parameter sets to add")
    ] = 6,
    seed: Annotated[int, typer.Option("--seed", help="seed of the samples and points")] = 0,
    json_: JsonOpt = False,
) -> None:
    """Audit a strategy for lookahead: exit 0 clean, 1 leaky or inconclusive (naming the bar,
    the parameters and the field).

    Many parameter sets (defaults, bounds, choices, samples; --param adds one) are truncated
    where signals change, at random bars and inside the warm-up, comparing entries, exits,
    stops and every meta series, with file and network reads blocked. Without data options it
    runs on the store's BTCUSDT 1h (the last 20,000 bars) when present, else on seeded
    synthetic bars with regimes.
    """
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest.metrics import json_safe
    from trading_pipeline.strategies.lookahead import (
        audit_family,
        default_audit_bars,
        param_sets,
    )

    fam = family_from_options(strategy, strategy_file)
    extra = [fam.validate(parse_params(param))] if param else []
    if data is None and symbol is None:
        layout = settings_from(data_dir, history_dir).layout
        bars, described = default_audit_bars(
            layout.history_dir, market=market, interval=interval or "1h"
        )
    else:
        bars, got_interval = bars_from_options(
            symbol=symbol,
            interval=interval,
            start=from_,
            end=to,
            market=market,
            data=data,
            data_dir=data_dir,
            history_dir=history_dir,
        )
        described = str(data) if data else f"{market} {symbol} {got_interval}"
    sets = extra + param_sets(fam, samples=samples, seed=seed)
    rep = audit_family(fam, bars, data=described, params=sets, seed=seed)
    if json_:
        print(json.dumps(json_safe(rep.to_json())))
    else:
        print(rep.describe())
    if not rep.clean:
        raise typer.Exit(1)
