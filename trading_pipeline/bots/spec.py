"""The fleet: the plan's five bots, what each may trade and its share of capital.

This is the one description of the fleet that the selector (which strategies each bot may be
given), the deployment job (what an assignment may contain), the runners and the replay read.
Nothing here talks to an exchange or a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trading_pipeline.errors import UserInputError

CASH = "cash"  # the choice "hold no position": every bot may always be given it


@dataclass(frozen=True)
class BotSpec:
    """One bot: its symbols and bar interval, the strategy families it may run, its default
    share of the fleet's capital and the families it runs before any selector decision."""

    name: str
    role: str
    symbols: tuple[str, ...]
    interval: str
    families: tuple[str, ...]
    capital_fraction: float
    venues: tuple[str, ...] = ("binance",)
    default_family: str = CASH
    default_params: Mapping[str, object] = field(default_factory=dict)
    description: str = ""

    def allows(self, family: str) -> bool:
        return family == CASH or family in self.families


# Ten liquid spot pairs for the 5-minute scalper; the momentum bot picks its five from these by
# recent momentum (see bots.fleet).
SCALPING_UNIVERSE = (
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "DOGEUSDT",
    "LTCUSDT",
    "LINKUSDT",
    "AVAXUSDT",
)

FLEET: tuple[BotSpec, ...] = (
    BotSpec(
        name="bot1",
        role="core",
        symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"),
        interval="1h",
        families=("sma_cross",),
        capital_fraction=0.30,
        default_family="sma_cross",
        description="core trend follower: SMA crossover on the three majors",
    ),
    BotSpec(
        name="bot2",
        role="scalping",
        symbols=SCALPING_UNIVERSE,
        interval="5m",
        families=("rsi_reversion", "bollinger_reversion", "ema_cross"),
        capital_fraction=0.25,
        description="5-minute mean reversion and fast crosses on ten coins",
    ),
    BotSpec(
        name="bot3",
        role="momentum",
        symbols=SCALPING_UNIVERSE,
        interval="1h",
        families=("momentum", "donchian_breakout", "macd"),
        capital_fraction=0.25,
        description="momentum and breakout on the five coins with the strongest recent momentum",
    ),
    BotSpec(
        name="bot4",
        role="arbitrage",
        # venue-qualified (bots/routing.py): the quote differs, USDT on Binance US, USD on
        # Coinbase; the arbitrage family's venue a is the first, venue b the second
        symbols=("binanceus:BTCUSDT", "coinbase:BTCUSD"),
        interval="1h",
        families=("arbitrage",),
        capital_fraction=0.15,
        venues=("binanceus", "coinbase"),
        # cash by default: at hourly granularity no spread survives both venues' costs (issue 9
        # note); an arbitrage assignment pre-funds the inventory when it arrives
        description="Binance US × Coinbase spread; holds cash until a spread survives costs",
    ),
    BotSpec(
        name="bot5",
        role="hedging",
        symbols=("BTCUSDT", "ETHUSDT"),
        interval="1h",
        families=("hedging",),
        capital_fraction=0.05,
        # the family's defaults, spelled out: stable-coin mode (spot only, no futures leg),
        # risk-off on a 15% drawdown from the 30-day high or a bear regime, back after a day
        # without a trigger; ETH is the correlation partner (corr_max 1 = that trigger off)
        default_family="hedging",
        default_params={
            "dd_limit": 0.15,
            "dd_bars": 24 * 30,
            "use_bear": True,
            "use_highvol": False,
            "corr_max": 1.0,
            "cooldown": 24,
            "reduce_to": 0.0,
        },
        description="holds BTC and ETH, moves to the stable coin when drawdown or regime turns",
    ),
)

FLEET_BY_NAME: dict[str, BotSpec] = {b.name: b for b in FLEET}


def bot_spec(name: str) -> BotSpec:
    """The bot called ``name``; an unknown name is a one-line :class:`UserInputError`."""
    try:
        return FLEET_BY_NAME[name]
    except KeyError:
        raise UserInputError(f"unknown bot {name!r}; known: {', '.join(FLEET_BY_NAME)}") from None


def default_split() -> dict[str, float]:
    """The plan's 30/25/25/15/5 capital split."""
    return {b.name: b.capital_fraction for b in FLEET}
