"""Bot verbs: ``bot run`` (one bot, paper by default, live only when asked) and
``paper replay`` (the whole fleet on history).

Every check of the user's input happens before any file is created, so a bad call changes
nothing. Live trading is never the default and needs keys from the environment. Replay ranges
are whole UTC days, ``--to`` (``--replay-to``) included.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_pipeline.cli.options import (
    CAPITAL,
    BotsDirOpt,
    CapitalOpt,
    DataDirOpt,
    HistoryDirOpt,
    JsonOpt,
    check_writable,
    settings_from,
)
from trading_pipeline.errors import UserInputError

bot_app = typer.Typer(help="Run one bot of the fleet.", no_args_is_help=True)
paper_app = typer.Typer(help="Paper trading: replay the fleet on history.", no_args_is_help=True)
APPS = [(bot_app, "bot"), (paper_app, "paper")]


def parse_day(value: str | None, flag: str) -> date | None:
    """``YYYY-MM-DD`` as a date (a UTC day) in the range markets can have."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.market.bars import parse_day as parse

    return parse(value, flag)


def check_range(first: date | None, last: date | None, *, flags: str) -> tuple[date, date]:
    """Both days given, ``first`` not after ``last`` (one day is a range: both are included)."""
    if first is None or last is None:
        raise UserInputError(f"{flags} are both needed")
    if last < first:
        start_flag, end_flag = flags.split(" and ")
        raise UserInputError(f"{start_flag} {first} is after {end_flag} {last}")
    return first, last


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The days ``first`` … ``last`` (inclusive) as the replay's ``[start, end)`` in UTC."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return start, end


def bars_in_range(load: Any, first: date, last: date) -> Any:
    """The frame loader ``load``, refusing (one line) a series with no bar in ``first`` …
    ``last``: a replay over missing data would report "$1000 → $1000" as if it had run."""
    start, end = day_bounds(first, last)

    def checked(symbols: tuple[str, ...], interval: str, warmup: int) -> Any:
        import polars as pl

        frames = load(symbols, interval, warmup)
        for symbol, df in frames.items():
            if df.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end)).is_empty():
                raise UserInputError(
                    f"no {interval} bars of {symbol} from {first} to {last} in the history store"
                )
        return frames

    return checked


def _stop_flag() -> Any:
    """A callable that turns True after SIGTERM/SIGINT, so the runner ends between steps."""
    stopped = {"v": False}

    def handler(signum: int, frame: Any) -> None:
        stopped["v"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return lambda: stopped["v"]


@bot_app.command("run")
def run(
    bot: Annotated[str, typer.Option("--bot", metavar="NAME", help="bot1 … bot5")],
    paper: Annotated[bool, typer.Option("--paper", help="paper broker (the default)")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="real orders through ccxt (needs keys)")
    ] = False,
    replay_from: Annotated[
        str | None,
        typer.Option(
            "--replay-from", metavar="YYYY-MM-DD", help="replay history from this day (paper)"
        ),
    ] = None,
    replay_to: Annotated[
        str | None,
        typer.Option(
            "--replay-to", metavar="YYYY-MM-DD", help="… to this last day, UTC (inclusive)"
        ),
    ] = None,
    capital: CapitalOpt = CAPITAL,
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    bots_dir: BotsDirOpt = None,
) -> None:
    """Run one bot: a step at every closed candle until stopped (or the replay's end)."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.spec import bot_spec, default_split

    spec = bot_spec(bot)
    if paper and live:
        raise UserInputError("choose --paper or --live, not both")
    replay = replay_from is not None or replay_to is not None
    if live and replay:
        raise UserInputError("--replay-from/--replay-to run on the paper broker; drop --live")
    if live:  # keys first (every venue's): a missing one is a one-line error before anything
        from trading_pipeline.bots.ccxt_broker import Credentials

        creds = {v: Credentials.from_env(os.environ, v) for v in spec.venues}
    first = last = None
    if replay:
        first, last = check_range(
            parse_day(replay_from, "--replay-from"),
            parse_day(replay_to, "--replay-to"),
            flags="--replay-from and --replay-to",
        )
    if not (math.isfinite(capital) and capital > 0):
        raise UserInputError(f"--capital must be positive and finite, got {capital}")
    settings = settings_from(data_dir, history_dir, bots_dir)
    layout = settings.layout
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    initial = capital * default_split()[spec.name]

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.assignment import default_assignment
    from trading_pipeline.bots.deploy_store import DeploymentStore

    store = DeploymentStore(settings.bots_dir)

    if replay:
        assert first is not None and last is not None
        # lazy: loaded with this verb only, so the command line starts fast
        from trading_pipeline.bots.replay import replay_bot, store_loader, warmup_bars

        start, end = day_bounds(first, last)
        a = store.current(spec.name) or default_assignment(spec.name)
        load = store_loader(settings.history_dir, start=start, end=end, market=settings.market)
        frames = bars_in_range(load, first, last)(tuple(a.symbols), a.interval, warmup_bars(a))
        workdir = layout.bot_replay_dir(spec.name, first, last)
        r = replay_bot(
            a, frames, start=start, end=end, initial_cash=initial, workdir=workdir, durable=True
        )
        print(
            json.dumps(
                {
                    "bot": r.bot,
                    "initial": r.initial,
                    "final": r.final,
                    "fills": r.fills.height,
                    "ledger": str(r.ledger_path),
                }
            )
        )
        return

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.candles import ExchangeCandles, VenueCandles
    from trading_pipeline.bots.clock import WallClock
    from trading_pipeline.bots.fleet import shared_fleet_halt
    from trading_pipeline.bots.ledger import Ledger
    from trading_pipeline.bots.replay import paper_broker
    from trading_pipeline.bots.runner import BotRunner
    from trading_pipeline.venues.exchange import make_exchange

    stop = _stop_flag()
    clock = WallClock(stop=stop)
    a0 = store.current(spec.name)
    candles: Any
    if live:
        # lazy: loaded with this verb only, so the command line starts fast
        from trading_pipeline.bots.live_venues import connect_live

        broker: Any
        broker, candles = connect_live(
            spec.venues,
            spec.symbols,
            creds,
            {v: settings.venue_url(v) for v in spec.venues},
            live=True,
        )
        mode = "live"
        assignments = lambda: store.current(spec.name)  # noqa: E731 - live: nothing until deployed
    else:
        exchanges = {v: make_exchange(v, base_url=settings.venue_url(v)) for v in spec.venues}
        candles = (
            VenueCandles({v: ExchangeCandles(ex) for v, ex in exchanges.items()})
            if len(exchanges) > 1
            else ExchangeCandles(next(iter(exchanges.values())))
        )
        mode = "paper"
        assignments = lambda: store.current(spec.name) or default_assignment(spec.name)  # noqa: E731
    workdir = layout.bot_mode_dir(spec.name, mode)
    if mode == "paper":
        broker = paper_broker(
            a0 or default_assignment(spec.name),
            candles,
            clock,
            initial_cash=initial,
            workdir=workdir,
        )
    ledger = Ledger(layout.ledger_path(spec.name, mode))
    runner = BotRunner(
        spec.name,
        ledger=ledger,
        broker=broker,
        candles=candles,
        clock=clock,
        assignments=assignments,
        initial_cash=initial,
        halt_path=layout.halt_path,
        fleet_capital=capital,
        fleet_halt=shared_fleet_halt(store, layout.bots_dir, mode),
        on_step=lambda report: print(report.line(), flush=True),
    )
    print(f"{spec.name}: {mode} trading, a line per closed bar (Ctrl-C stops)", flush=True)
    runner.run(stop=stop, keep_going=True)


@paper_app.command("replay")
def replay_cmd(
    from_: Annotated[
        str, typer.Option("--from", metavar="YYYY-MM-DD", help="first day, UTC (inclusive)")
    ],
    to: Annotated[
        str, typer.Option("--to", metavar="YYYY-MM-DD", help="last day, UTC (inclusive)")
    ],
    as_json: JsonOpt = False,
    capital: CapitalOpt = CAPITAL,
    out: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="report directory (default BOTS_DIR/replays/FROM-TO)"),
    ] = None,
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    bots_dir: BotsDirOpt = None,
) -> None:
    """Replay the whole fleet with its deployed (or default) assignments; write a report."""
    first, last = check_range(
        parse_day(from_, "--from"), parse_day(to, "--to"), flags="--from and --to"
    )
    if not (math.isfinite(capital) and capital > 0):
        raise UserInputError(f"--capital must be positive and finite, got {capital}")
    settings = settings_from(data_dir, history_dir, bots_dir)
    start, end = day_bounds(first, last)
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.deploy_store import DeploymentStore
    from trading_pipeline.bots.replay import replay_report, store_loader, tuning_of_fleet

    assignments = DeploymentStore(settings.bots_dir).all_current()
    tuning = tuning_of_fleet(settings.layout, assignments)
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.cash_reason import cash_reasons
    from trading_pipeline.bots.spec import current_fleet

    reasons = cash_reasons(settings.layout, current_fleet().bots, assignments)
    target = out or settings.layout.replay_dir(first, last)
    if target.exists() and not target.is_dir():
        raise UserInputError(f"--out {target} exists and is not a folder")
    check_writable(target, "report folder")
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.cli.progress import progress_bar

    with progress_bar(f"paper replay {first} … {last}") as advance:
        data = replay_report(
            target,
            start=start,
            end=end,
            load=bars_in_range(
                store_loader(settings.history_dir, start=start, end=end, market=settings.market),
                first,
                last,
            ),
            assignments=assignments,
            capital=capital,
            tuning=tuning,
            progress=advance,
            reasons=reasons,
        )
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    print(f"paper replay {first} … {last}: ${data['capital']:.2f} → ${data['final']:.2f}")
    for name, b in data["bots"].items():
        bh = b.get("buy_and_hold_return")
        beside = "buy-and-hold    n/a" if bh is None else f"buy-and-hold {bh:+7.1%}"
        print(
            f"  {name:5} {b['family']:14} {b['initial']:9.2f} → {b['final']:9.2f} "
            f"({b['return']:+7.1%}, {beside})  "
            f"fills {len(b['fills']):4}  risk events {len(b['risk_events'])}" + in_sample_mark(b)
        )
        print(f"        {assignment_line(b)}")
    if data.get("in_sample_bots"):
        print(
            f"IN-SAMPLE: {', '.join(data['in_sample_bots'])} replay bars their parameters were "
            "tuned or selected on; those results say nothing about unseen data"
        )
    print(f"report: {target / 'report.json'}, {target / 'equity.png'}")


def assignment_line(bot: Mapping[str, Any]) -> str:
    """``assignment v3 sma_cross 1h BTCUSDT,ETHUSDT (selector)`` then, for a cash bot, why;
    a momentum bot's pick at the start after it."""
    a = bot.get("assignment") or {}
    where = f" ({a['source']})" if a.get("source") else ""
    line = (
        f"assignment v{a.get('version', '?')} {a.get('family', bot['family'])} "
        f"{a.get('interval', '?')} {','.join(a.get('symbols') or bot['symbols'])}{where}"
    )
    if bot.get("cash_reason"):
        line += f"; cash: {bot['cash_reason']}"
    pick = bot.get("momentum_pick")
    if pick:
        line += (
            f"; momentum top {pick['top']} at {pick['at'][:16]}: "
            f"{', '.join(pick['picked']) or 'none'}"
            + (f" (no history: {len(pick['unranked'])})" if pick.get("unranked") else "")
        )
    return line


def in_sample_mark(bot: Mapping[str, Any]) -> str:
    """``  IN-SAMPLE 42% (study …)`` for a bot whose replay overlaps its tuning windows."""
    share = bot.get("in_sample_fraction")
    if share is None:
        return "  tuning windows unknown"
    if share <= 0:
        return "  out of sample"
    return f"  IN-SAMPLE {share:.0%} ({bot['in_sample']['study']})"
