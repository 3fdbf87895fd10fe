"""The 5-minute decision as a sensor: one tick per evaluation, a deployment when a bot changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg

from trading_pipeline.settings import Settings

if TYPE_CHECKING:
    from trading_pipeline.selector.decide import Decider, TickResult

DEPLOY_JOB = "deploy_assignments"
DECISION_INTERVAL_S = 300


def utc_now() -> datetime:
    """The decision time (a module function so tests can pin the clock)."""
    return datetime.now(UTC)


# Deciders by resource configuration: the sensor's process keeps its champion loaded between
# ticks (Dagster builds a new resource object for every evaluation).
_DECIDERS: dict[str, Decider] = {}


class SelectorRuntime(dg.ConfigurableResource):
    """Where the decision reads candles, models and writes decisions, and its hysteresis."""

    data_dir: str = "data"
    history_dir: str | None = None
    tracking_uri: str | None = None
    venue: str = "binance"
    venue_url: str | None = None
    live: bool = True
    persist: int = 3
    margin: float = 0.15

    @classmethod
    def from_settings(cls, settings: Settings, venue_url: str | None = None) -> SelectorRuntime:
        return cls(
            data_dir=str(settings.data_dir),
            history_dir=str(settings.history_dir),
            tracking_uri=settings.mlflow_tracking_uri,
            venue_url=venue_url,
        )

    def decider(self) -> Decider:
        """The cached :class:`Decider` for this configuration (built on first use)."""
        key = self.model_dump_json()
        if key not in _DECIDERS:
            _DECIDERS[key] = self._build()
        return _DECIDERS[key]

    def _build(self) -> Decider:
        from pathlib import Path

        from trading_pipeline.selector.decide import (
            Decider,
            Hysteresis,
            embedded_tracking_uri,
            open_registry,
        )
        from trading_pipeline.selector.decisions import DecisionStore, decisions_path
        from trading_pipeline.selector.live import CandleSource, LiveCandles, StoreCandles

        data = Path(self.data_dir)
        store = StoreCandles(Path(self.history_dir) if self.history_dir else data / "history")
        candles: CandleSource = store
        if self.live:
            from trading_pipeline.venues.exchange import make_exchange

            candles = LiveCandles(make_exchange(self.venue, base_url=self.venue_url), store=store)
        uri = self.tracking_uri or embedded_tracking_uri(data)
        return Decider(
            None,
            candles,
            DecisionStore(decisions_path(data)),
            hysteresis=Hysteresis(persist=self.persist, margin=self.margin),
            open_registry=lambda: open_registry(uri),
        )

    def tick(self, now: datetime | None = None) -> TickResult:
        return self.decider().tick(now)


@dg.sensor(
    job_name=DEPLOY_JOB,
    minimum_interval_seconds=DECISION_INTERVAL_S,
    description=(
        "Every 5 minutes: the champion selector decides per bot on the latest closed candles; "
        "requests deploy_assignments when a bot's choice changed."
    ),
)
def selector_decision_sensor(
    context: dg.SensorEvaluationContext, selector_runtime: SelectorRuntime
) -> dg.SensorResult | dg.SkipReason:
    from trading_pipeline.market.candles import CandleError
    from trading_pipeline.selector.live import CandleFetchError

    try:
        result = selector_runtime.tick(utc_now())
    except (CandleFetchError, CandleError) as exc:
        return dg.SkipReason(f"no decision this tick: {str(exc).splitlines()[0]}")
    ref = result.model
    model = f"{ref.name} v{ref.version}" if ref.version is not None else f"{ref.name} (none)"
    ids = [d.id for d in result.decisions if d.id is not None]
    context.log.info(
        f"{len(ids)} decisions recorded by {model}; changed: {', '.join(result.changed) or 'none'}"
    )
    if not result.changed:
        return dg.SkipReason(f"no bot changed ({model}, decisions {ids[0]}-{ids[-1]})")
    request = dg.RunRequest(
        run_key=result.run_key,
        tags={
            "selector/decision_ids": ",".join(map(str, result.changed_ids)),
            "selector/bots": ",".join(result.changed),
            "selector/model_version": str(ref.version),
        },
    )
    return dg.SensorResult(run_requests=[request], cursor=str(max(ids)))


@dg.definitions
def decision_defs() -> dg.Definitions:
    """The sensor and its resource (a module with a ``@definitions`` function contributes only
    what that function returns, so the sensor is listed here)."""
    settings = Settings.from_env()
    return dg.Definitions(
        sensors=[selector_decision_sensor],
        resources={
            "selector_runtime": SelectorRuntime.from_settings(
                settings, venue_url=settings.venue_url("binance")
            )
        },
    )
