"""Deployment as Dagster: the ``bot_assignments`` asset (its job and sensors are in
``jobs.py`` and ``sensors.py``).

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
from pydantic import Field

from trading_pipeline.bots.lineage import with_discovery_lineage
from trading_pipeline.defs.bots.lineage import lineage_metadata
from trading_pipeline.defs.bots.resources import BotsRuntime
from trading_pipeline.defs.discovery.assets import top_strategies
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.selector.assets import selector_model
from trading_pipeline.defs.tables import rows_of, table, tidy
from trading_pipeline.defs.versions import TRADING, source_version

GROUP = "bots"
DEPLOY_JOB = "deploy_assignments"
TRIGGER_TAGS = ("selector/decision_ids", "selector/bots", "selector/model_version", "trigger")
OWNERS = [TRADING]
ASSIGNMENT_COLUMNS = ["bot", "status", "version", "family", "fraction", "reason"]


class DeployConfig(dg.Config):
    """``seed_defaults``: bots with no assignment and no decision get their spec default."""

    seed_defaults: bool = Field(
        default=True,
        description="bots with no assignment and no decision yet get their spec's default",
    )


def _rows(report: Any, fleet: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for a in report.deployed:
        rows.append([a.bot, "deployed", a.version, a.family, a.capital_fraction, ""])
    for a in report.unchanged:
        rows.append([a.bot, "unchanged", a.version, a.family, a.capital_fraction, ""])
    for r in report.refused:
        kept = fleet.get(r.bot)
        rows.append(
            [
                r.bot,
                "refused",
                kept.version if kept else "-",
                r.candidate.family,
                r.candidate.capital_fraction,
                r.reason,
            ]
        )
    return sorted(rows, key=lambda row: str(row[0]))


@dg.asset(
    group_name=GROUP,
    kinds={"json"},
    description="Validated, versioned assignment per bot in the deployment store (TP_BOTS_DIR).",
    deps=[top_strategies, selector_model],
    code_version=source_version(
        __name__,
        "trading_pipeline.bots.fleet",
        "trading_pipeline.bots.deploy_store",
        "trading_pipeline.bots.lineage",
        "trading_pipeline.bots.assignment",
    ),
    owners=OWNERS,
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
        store.record_refusal(bot, why, stale_decision=True)  # in the bot's history.jsonl
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
        metadata=tidy(
            {
                "deployed": len(report.deployed),
                "unchanged": len(report.unchanged),
                "refused": len(report.refused),
                "decisions_used": len(decisions),
                "fleet_fraction": dg.MetadataValue.float(round(float(total), 4)),
                "assignments": table(
                    rows_of(ASSIGNMENT_COLUMNS, _rows(report, fleet)),
                    ASSIGNMENT_COLUMNS,
                    descriptions={
                        "version": "the assignment's version in the bot's store (kept when refused)",
                        "fraction": "share of the fleet's capital (0.3 = 30%)",
                        "reason": "why a candidate was refused (the bot keeps its assignment)",
                    },
                ),
                "refusals": dg.MetadataValue.json(
                    [{"bot": r.bot, "reason": r.reason} for r in report.refused]
                    + [{"bot": bot, "reason": why} for bot, why in stale.items()]
                ),
                "stale_decisions": len(stale),
                "bots_dir": dg.MetadataValue.path(str(store.bots_dir)),
                **lineage_metadata(lake, fleet),
            }
        )
    )


def _read_top(path: Path) -> dict[str, Any] | None:
    """``top_strategies.json`` as top_strategies wrote it (None before discovery ran)."""
    return json.loads(path.read_text()) if path.is_file() else None


def utc_now() -> datetime:
    """The wall clock a decision's age is judged by (one place, so a test can move it)."""
    return datetime.now(UTC)
