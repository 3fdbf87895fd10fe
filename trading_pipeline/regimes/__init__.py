"""Regime labelling (bull / bear / sideways × volatility) and period segmentation.

Labellers implement :class:`~trading_pipeline.regimes.base.RegimeLabeller`; ``rules`` is
transparent, ``gmm`` statistical. Both are causal and smoothed with a confirmed minimum
duration.
"""

from __future__ import annotations

from trading_pipeline.regimes.base import REGIMES, UNKNOWN, RegimeLabeller
from trading_pipeline.regimes.current import current_regime
from trading_pipeline.regimes.periods import segment, share
from trading_pipeline.regimes.registry import LABELLERS, get_labeller

__all__ = [
    "LABELLERS",
    "REGIMES",
    "UNKNOWN",
    "RegimeLabeller",
    "current_regime",
    "get_labeller",
    "segment",
    "share",
]
