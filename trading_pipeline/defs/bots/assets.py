"""Deployment as Dagster: the ``deploy_assignments`` job and the champion-change sensor.

The asset ``bot_assignments`` turns the selector's decisions in force (plus each bot's current
capital fraction and risk limits) into candidate assignments and deploys them through the
:class:`~trading_pipeline.bots.deploy_store.DeploymentStore`: valid ones are written as new
versions, invalid ones are refused with their reason (in the metadata and the bot's history)
and their bot keeps what it has. Before the selector has decided anything, bots without an
assignment get their spec default. The job is requested by the selector's decision sensor
(a bot's choice changed) and by :func:`champion_change_sensor` (the champion model moved).
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from trading_pipeline.bots.lineage import with_discovery_lineage
from trading_pipeline.defs.bots.resources import BotsRuntime
from trading_pipeline.defs.discovery.assets import top_strategies
from trading_pipeline.defs.history.metadata import markdown_table
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.selector.assets import selector_model

GROUP = "bots"
DEPLOY_JOB = "deploy_assignments"
CHAMPION_POLL_S = 60
RISK_POLL_S = 60
TRIGGER_TAGS = ("selector/decision_ids", "selector/bots", "selector/model_version", "trigger")


class DeployConfig(dg.Config):
    """``seed_defaults``: bots with no assignment and no decision get their spec default."""

    seed_defaults: bool = True


def _rows(report: Any, fleet: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for a in report.deployed:
        rows.append([a.bot, "deployed", a.version, a.family, f"{a.capital_fraction:.1%}", ""])
    for a in report.unchanged:
        rows.append([a.bot, "unchanged", a.version, a.family, f"{a.capital_fraction:.1%}", ""])
    for r in report.refused:
        kept = fleet.get(r.bot)
        rows.append(
            [
                r.bot,
                "refused",
                kept.version if kept else "-",
                r.candidate.family,
                f"{r.candidate.capital_fraction:.1%}",
                r.reason,
            ]
        )
    return sorted(rows, key=lambda row: str(row[0]))


@dg.asset(
    group_name=GROUP,
    kinds={"json"},
    description="Validated, versioned assignment per bot in the deployment store (TP_BOTS_DIR).",
    deps=[top_strategies, selector_model],
)
def bot_assignments(
    context: dg.AssetExecutionContext,
    config: DeployConfig,
    lake: DataLake,
    bots_runtime: BotsRuntime,
) -> dg.MaterializeResult:
    from trading_pipeline.bots.fleet import candidates_from_decisions, split_stale

    store = bots_runtime.store(lake.layout)
    now = utc_now()
    decisions, stale = split_stale(bots_runtime.decisions(lake.layout), now=now)
    for bot, why in stale.items():
        context.log.warning(f"refused {bot}: {why}")
    tags = context.run.tags if context.run is not None else {}
    lineage = {
        "dagster_run_id": context.run.run_id,
        **{k: tags[k] for k in TRIGGER_TAGS if k in tags},
    }
    candidates = candidates_from_decisions(
        decisions,
        store.all_current(),
        seed_defaults=config.seed_defaults,
        lineage=lineage,
        now=now,
    )
    # the ranked studies behind each choice (top_strategies) and the champion (selector_model)
    candidates = with_discovery_lineage(
        candidates,
        _read_top(lake.layout.top_strategies_path),
        champion_version=bots_runtime.champion_version(lake.layout),
    )
    report = store.deploy(candidates)
    fleet = store.all_current()
    for r in report.refused:
        context.log.warning(f"refused {r.bot}: {r.reason}")
    total = sum(a.capital_fraction for a in fleet.values())
    return dg.MaterializeResult(
        metadata={
            "deployed": len(report.deployed),
            "unchanged": len(report.unchanged),
            "refused": len(report.refused),
            "decisions_used": len(decisions),
            "fleet_fraction": dg.MetadataValue.float(float(total)),
            "assignments": dg.MetadataValue.md(
                markdown_table(
                    ["bot", "status", "version", "family", "fraction", "reason"],
                    _rows(report, fleet),
                )
            ),
            "refusals": dg.MetadataValue.json(
                [{"bot": r.bot, "reason": r.reason} for r in report.refused]
                + [{"bot": bot, "reason": why} for bot, why in stale.items()]
            ),
            "stale_decisions": len(stale),
            "bots_dir": dg.MetadataValue.path(str(store.bots_dir)),
        }
    )


def _read_top(path: Path) -> dict[str, Any] | None:
    """``top_strategies.json`` as top_strategies wrote it (None before discovery ran)."""
    return json.loads(path.read_text()) if path.is_file() else None


def utc_now() -> datetime:
    """The wall clock a decision's age is judged by (one place, so a test can move it)."""
    return datetime.now(UTC)


deploy_assignments = dg.define_asset_job(
    DEPLOY_JOB,
    selection=dg.AssetSelection.assets(bot_assignments),
    description="Build assignments from the selector's decisions, validate and deploy them.",
)


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
