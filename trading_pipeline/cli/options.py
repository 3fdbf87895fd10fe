"""Every option more than one verb takes, declared once, with defaults from the core constants.

Also the few helpers that turn those options into core values (the data layout, a strategy
family), so every verb resolves them the same way.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trading_pipeline.backtest.costs import DEFAULT_FEE, DEFAULT_SLIPPAGE_BPS
from trading_pipeline.errors import EnvironmentFault, UserInputError
from trading_pipeline.settings import DEFAULT_INTERVAL, Settings, resolve_settings

if TYPE_CHECKING:
    import polars as pl

    from trading_pipeline.strategies.base import StrategyFamily


def finite(value: float | None) -> float | None:
    """Option callback: a float option must be a finite number (typer's ``min``/``max`` let NaN
    through, since every comparison with NaN is false)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


def positive(value: float | None) -> float | None:
    """Option callback: a finite number above zero (money, sizes)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a finite number above 0, got {value}")
    return value


# where things are: flag > env > default, the same for every verb (settings.resolve_settings)
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        help="where everything goes; beats TP_DATA_DIR, and TP_HISTORY_DIR/TP_BOTS_DIR too "
        "(history and bots go under it); precedence flag > env > default ./data",
    ),
]
HistoryDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--history-dir",
        metavar="DIR",
        help="the history store; beats --data-dir and TP_HISTORY_DIR "
        "(default TP_HISTORY_DIR, else DATA_DIR/history)",
    ),
]
BotsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--bots-dir",
        metavar="DIR",
        help="assignments, ledgers, HALT, replays; beats --data-dir and TP_BOTS_DIR "
        "(default TP_BOTS_DIR, else DATA_DIR/bots)",
    ),
]

# which bars
SymbolOpt = Annotated[
    str | None, typer.Option("--symbol", metavar="SYMBOL", help="e.g. BTCUSDT (from the store)")
]
IntervalOpt = Annotated[
    str | None,
    typer.Option(
        "--interval",
        metavar="INTERVAL",
        help=f"e.g. {DEFAULT_INTERVAL} (with --data: inferred from the bar spacing)",
    ),
]
FromOpt = Annotated[
    str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="first day, UTC (inclusive)")
]
ToOpt = Annotated[
    str | None, typer.Option("--to", metavar="YYYY-MM-DD", help="last day, UTC (inclusive)")
]
MarketOpt = Annotated[str, typer.Option("--market", metavar="MARKET", help="spot, um or cm")]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data", metavar="FILE", help="candle file: Parquet, freqtrade .feather or .json"
    ),
]

# strategies and costs
StrategyOpt = Annotated[str, typer.Option("--strategy", metavar="NAME", help="strategy family")]
StrategyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--strategy-file", metavar="FILE", help="a .py file defining StrategyFamily classes"
    ),
]
FeeOpt = Annotated[
    float,
    typer.Option(
        "--fee",
        callback=finite,
        metavar="FRACTION",
        help="fee per side, e.g. 0.001 = 0.1 %",
    ),
]
SlippageOpt = Annotated[
    float,
    typer.Option(
        "--slippage-bps",
        callback=finite,
        metavar="BPS",
        help="slippage, basis points",
    ),
]
FEE = DEFAULT_FEE
SLIPPAGE_BPS = DEFAULT_SLIPPAGE_BPS

# stores
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        metavar="URL",
        help="Optuna storage: journal:PATH, sqlite:///PATH, postgresql://… or redis://… "
        "(default TP_OPTUNA_STORAGE, else the journal file DATA_DIR/optuna/studies.log)",
    ),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI (default TP_MLFLOW_TRACKING_URI, "
        "else SQLite DATA_DIR/mlflow/mlflow.db)",
    ),
]

# output and servers
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
PortOpt = Annotated[
    int, typer.Option("--port", "-p", min=0, max=65535, metavar="PORT", help="port on 127.0.0.1")
]
CapitalOpt = Annotated[
    float,
    typer.Option(
        "--capital",
        metavar="USD",
        help="fleet capital, split by the fleet's fractions",
    ),
]
CAPITAL = 1000.0


def settings_from(
    data_dir: Path | None = None, history_dir: Path | None = None, bots_dir: Path | None = None
) -> Settings:
    """The settings for these flags: flag > env > default (see :func:`resolve_settings`); a
    folder that exists as something else (a regular file) is a one-line error."""
    settings = resolve_settings(data_dir=data_dir, history_dir=history_dir, bots_dir=bots_dir)
    for what, path in (
        ("data dir", settings.data_dir),
        ("history dir", settings.history_dir),
        ("bots dir", settings.bots_dir),
    ):
        if path.exists() and not path.is_dir():
            raise UserInputError(f"the {what} {path} exists and is not a folder")
    return settings


def check_writable(path: Path, what: str) -> None:
    """An :class:`EnvironmentFault` (one line, exit 1) when ``path`` could not be created or
    written: probed with an empty folder made and removed in its nearest existing ancestor,
    so nothing is left behind either way (``os.access`` is no test for root)."""
    import tempfile

    base = path
    while not base.exists() and base != base.parent:
        base = base.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tp-probe-", dir=base))
    except OSError as exc:
        raise EnvironmentFault(f"the {what} {path} is not writable: {exc.strerror}") from None


def family_from_options(name: str, strategy_file: Path | None) -> StrategyFamily:
    """The family ``--strategy NAME`` names, looked up in ``--strategy-file`` first."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.strategies.registry import get_family, load_strategy_file

    extra = load_strategy_file(strategy_file) if strategy_file else None
    return get_family(name, extra)


def bars_from_options(
    *,
    symbol: str | None,
    interval: str | None,
    start: str | None,
    end: str | None,
    market: str,
    data: Path | None,
    data_dir: Path | None,
    history_dir: Path | None,
) -> tuple[pl.DataFrame, str]:
    """Bars and their interval from ``--data FILE`` or the store (``--symbol --interval``)."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.market.bars import load_bars, parse_day

    first, last = parse_day(start, "--from"), parse_day(end, "--to")
    if first and last and first > last:
        raise UserInputError(f"--from {first} is after --to {last}")
    return load_bars(
        symbol=symbol,
        interval=interval,
        start=first,
        end=last,
        market=market,
        history_dir=settings_from(data_dir, history_dir).history_dir,
        data=data,
    )
