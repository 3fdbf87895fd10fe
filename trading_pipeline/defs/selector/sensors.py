"""The 5-minute decision as a sensor: one tick per evaluation, a deployment when a bot changed."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.selector.resources import SelectorRuntime

DEPLOY_JOB = "deploy_assignments"
DECISION_INTERVAL_S = 300


def utc_now() -> datetime:
    """The decision time (a module function so tests can pin the clock)."""
    return datetime.now(UTC)


@dg.sensor(
    job_name=DEPLOY_JOB,
    minimum_interval_seconds=DECISION_INTERVAL_S,
    description=(
        "Every 5 minutes: the champion selector decides per bot on the latest closed candles; "
        "requests deploy_assignments when a bot's choice changed."
    ),
)
def selector_decision_sensor(
    context: dg.SensorEvaluationContext, lake: DataLake, selector_runtime: SelectorRuntime
) -> dg.SensorResult | dg.SkipReason:
    from trading_pipeline.market.candles import CandleError
    from trading_pipeline.selector.live import CandleFetchError

    try:
        result = selector_runtime.tick(lake.layout, utc_now())
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
