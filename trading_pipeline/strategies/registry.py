"""The explicit registry of strategy families, and loading of user families from a file.

A user file is any Python module defining :class:`StrategyFamily` subclasses with a ``name``;
it goes through the same contract (validated search space, ``signals``) as the built-ins. It is
imported with outside input blocked (data read at import time would escape the lookahead audit),
may not reuse a built-in family's name, and an exit at import is an error, not a silent exit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.arbitrage import Arbitrage
from trading_pipeline.strategies.base import SearchSpace, StrategyFamily
from trading_pipeline.strategies.bollinger_reversion import BollingerReversion
from trading_pipeline.strategies.buy_and_hold import BuyAndHold
from trading_pipeline.strategies.donchian_breakout import DonchianBreakout
from trading_pipeline.strategies.ema_cross import EmaCross
from trading_pipeline.strategies.hedging import Hedging
from trading_pipeline.strategies.macd import Macd
from trading_pipeline.strategies.momentum import Momentum
from trading_pipeline.strategies.rsi_reversion import RsiReversion
from trading_pipeline.strategies.sandbox import no_outside_input
from trading_pipeline.strategies.sma_cross import SmaCross
from trading_pipeline.strategies.trend_vol import TrendVol
from trading_pipeline.strategies.vol_target import VolTarget
from trading_pipeline.strategies.xs_momentum import CrossSectionalMomentum

FAMILIES: dict[str, StrategyFamily] = {
    f.name: f
    for f in (
        SmaCross(),
        EmaCross(),
        Macd(),
        RsiReversion(),
        BollingerReversion(),
        DonchianBreakout(),
        Momentum(),
        BuyAndHold(),
    )
}

# Families with several input series (run through signals_multi / backtest.multi, not the
# single-series tuner, so they are kept out of FAMILIES).
MULTI_FAMILIES: dict[str, StrategyFamily] = {f.name: f for f in (Arbitrage(), Hedging())}

# Portfolio families: target weights over a universe of coins (one universe frame as the
# series; tuned, audited and judged like single-series families, simulated by
# backtest.portfolio). Kept out of FAMILIES: the per-symbol discovery partitions do not run them.
PORTFOLIO_FAMILIES: dict[str, StrategyFamily] = {
    f.name: f for f in (CrossSectionalMomentum(), VolTarget(), TrendVol())
}


def get_family(name: str, extra: dict[str, StrategyFamily] | None = None) -> StrategyFamily:
    """The family called ``name`` (user families in ``extra`` first)."""
    pool = {**FAMILIES, **MULTI_FAMILIES, **PORTFOLIO_FAMILIES, **(extra or {})}
    if name not in pool:
        raise UserInputError(f"unknown strategy {name!r}; known: {', '.join(sorted(pool))}")
    return pool[name]


def load_strategy_file(path: str | Path) -> dict[str, StrategyFamily]:
    """Import a Python file and return its strategy families by name."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".py":
        raise UserInputError(f"strategy file must be an existing .py file: {p}")
    mod_name = f"tp_user_strategy_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise UserInputError(f"cannot import strategy file {p}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    refused: list[str] = []
    failure: Exception | None = None
    try:
        with no_outside_input() as refused:
            spec.loader.exec_module(module)
    except (SystemExit, KeyboardInterrupt) as exc:
        sys.modules.pop(mod_name, None)
        raise UserInputError(
            f"strategy file {p} stopped the import ({type(exc).__name__}"
            f"{': ' + str(exc) if str(exc) else ''})"
        ) from None
    except Exception as exc:
        failure = exc
    if refused or failure is not None:
        sys.modules.pop(mod_name, None)
        if refused:  # also when the file caught the refusal and went on
            raise UserInputError(f"strategy file {p} reads outside input at import: {refused[0]}")
        raise UserInputError(f"strategy file {p} failed to import: {failure}") from failure
    found: dict[str, StrategyFamily] = {}
    for obj in vars(module).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, StrategyFamily)
            and obj is not StrategyFamily
            and isinstance(getattr(obj, "name", None), str)
            and isinstance(getattr(obj, "space", None), SearchSpace)
            and obj.__module__ == mod_name
        ):
            found[obj.name] = obj()
    if not found:
        raise UserInputError(f"strategy file {p} defines no StrategyFamily subclass with a name")
    shadowing = sorted(set(found) & (set(FAMILIES) | set(MULTI_FAMILIES) | set(PORTFOLIO_FAMILIES)))
    if shadowing:
        raise UserInputError(
            f"strategy file {p} defines {shadowing[0]!r}, the name of a built-in family; rename it"
        )
    return found
