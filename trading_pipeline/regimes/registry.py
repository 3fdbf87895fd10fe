"""The labellers by name."""

from __future__ import annotations

from collections.abc import Callable

from trading_pipeline.regimes.base import RegimeLabeller
from trading_pipeline.regimes.gmm import GmmLabeller
from trading_pipeline.regimes.rules import RulesLabeller

LABELLERS: dict[str, Callable[[], RegimeLabeller]] = {
    "rules": RulesLabeller,
    "gmm": GmmLabeller,
}
DEFAULT_LABELLER = "rules"


def get_labeller(name: str = DEFAULT_LABELLER) -> RegimeLabeller:
    """A new labeller with default parameters; unknown names raise ``KeyError``."""
    if name not in LABELLERS:
        raise KeyError(f"unknown labeller {name!r}: choose one of {', '.join(LABELLERS)}")
    return LABELLERS[name]()
