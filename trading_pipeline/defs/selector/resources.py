"""The ``SelectorRuntime`` resource: the 5-minute decision's venue and hysteresis (paths are
``DataLake``'s), and the decider it keeps loaded between sensor ticks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from trading_pipeline.selector.decide import Decider, TickResult
    from trading_pipeline.settings import DataLayout

# Deciders by configuration: the sensor's process keeps its champion loaded between ticks
# (Dagster builds a new resource object for every evaluation).
_DECIDERS: dict[str, Decider] = {}


class SelectorRuntime(dg.ConfigurableResource):
    """Where the decision reads live candles (``TP_BINANCE_URL``) and its hysteresis."""

    venue: str = Field(default="binance", description="the venue the live candles come from")
    venue_url: str | None = Field(
        default=None, description="override URL of that venue (TP_BINANCE_URL)"
    )
    live: bool = Field(
        default=True,
        description="read the latest closed candles from the venue, not only the store",
    )
    persist: int = Field(
        default=3, description="hysteresis: ticks with new bars a new pick must lead for"
    )
    margin: float = Field(
        default=0.15, description="hysteresis: probability lead that switches at once"
    )

    def decider(self, layout: DataLayout) -> Decider:
        """The cached :class:`Decider` for this configuration and layout (built on first use)."""
        key = f"{self.model_dump_json()}|{layout!r}"
        if key not in _DECIDERS:
            _DECIDERS[key] = self._build(layout)
        return _DECIDERS[key]

    def _build(self, layout: DataLayout) -> Decider:
        # lazy: the selector, sklearn and mlflow load only when the sensor first ticks
        from trading_pipeline.bots.spec import current_fleet
        from trading_pipeline.market.sentiment import read_fear_greed
        from trading_pipeline.selector.decide import Decider, Hysteresis, open_registry
        from trading_pipeline.selector.decisions import DecisionStore
        from trading_pipeline.selector.live import CandleSource, LiveCandles, StoreCandles
        from trading_pipeline.selector.news_state import stored_news_state

        store = StoreCandles(layout.history_dir)
        candles: CandleSource = store
        if self.live:
            from trading_pipeline.venues.exchange import make_exchange  # lazy: ccxt costs ~1 s

            candles = LiveCandles(make_exchange(self.venue, base_url=self.venue_url), store=store)
        uri = layout.mlflow_tracking_uri
        return Decider(
            None,
            candles,
            DecisionStore(layout.decisions_path),
            fleet=current_fleet().bots,
            hysteresis=Hysteresis(persist=self.persist, margin=self.margin),
            open_registry=lambda: open_registry(uri),
            # the index the fear_greed asset stored (a model trained with it reads it too)
            fear_greed=lambda _now: read_fear_greed(layout.feature_path("fear_greed")),
            # the news the news_sentiment asset stored (0/0 when none: as in training)
            state_fn=stored_news_state(layout),
        )

    def tick(self, layout: DataLayout, now: datetime | None = None) -> TickResult:
        return self.decider(layout).tick(now)
