"""The bots' sensors: deploy when the selector's champion moves, and the fleet's daily-loss
guard (it writes the HALT file every runner obeys)."""

import dagster as dg

from trading_pipeline.defs.bots.jobs import deploy_assignments
from trading_pipeline.defs.bots.resources import BotsRuntime
from trading_pipeline.defs.resources import DataLake

CHAMPION_POLL_S = 60
RISK_POLL_S = 60


@dg.sensor(
    job=deploy_assignments,
    minimum_interval_seconds=CHAMPION_POLL_S,
    description="Requests deploy_assignments when the strategy-selector champion alias moves.",
)
def champion_change_sensor(
    context: dg.SensorEvaluationContext, lake: DataLake, bots_runtime: BotsRuntime
) -> dg.SensorResult | dg.SkipReason:
    version = bots_runtime.champion_version(lake.layout)
    if version is None:
        return dg.SkipReason("no strategy-selector champion yet")
    if context.cursor == str(version):
        return dg.SkipReason(f"champion still v{version}")
    previous = context.cursor or "none"
    context.log.info(f"champion moved {previous} → v{version}: deploying")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"champion-v{version}-after-{previous}",
                tags={"selector/model_version": str(version), "trigger": "champion_change"},
            )
        ],
        cursor=str(version),
    )


@dg.sensor(
    minimum_interval_seconds=RISK_POLL_S,
    description=(
        "Fleet daily-loss guard: halts the fleet (HALT file) when its equity is 10% below the "
        "UTC day's starting equity; lifts its own halt on the next UTC day."
    ),
)
def fleet_risk_sensor(
    context: dg.SensorEvaluationContext, lake: DataLake, bots_runtime: BotsRuntime
) -> dg.SkipReason:
    import time

    from trading_pipeline.bots.fleet import check_fleet_loss, close_all, open_ledgers

    ledgers = open_ledgers(lake.layout.bots_dir, bots_runtime.ledger_mode)
    if not ledgers:
        return dg.SkipReason(f"no {bots_runtime.ledger_mode} ledgers yet")
    try:
        risk = check_fleet_loss(
            bots_runtime.store(lake.layout),
            ledgers,
            now_ms=int(time.time() * 1000),
            limit=bots_runtime.fleet_daily_loss,
        )
    finally:
        close_all(list(ledgers.values()))
    text = f"fleet daily loss {risk.loss:.2%} (limit {risk.limit:.0%})"
    if risk.halted_now:
        context.log.warning(f"{text}: fleet HALTED")
        return dg.SkipReason(f"{text}: fleet halted")
    if risk.lifted_now:
        context.log.info("fleet daily-loss halt lifted: a new UTC day")
    return dg.SkipReason(text)
