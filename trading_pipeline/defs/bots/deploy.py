"""Deployment as Dagster: the ``deploy_assignments`` job and the champion-change sensor.

The asset ``bot_assignments`` turns the selector's decisions in force (plus each bot's current
capital fraction and risk limits) into candidate assignments and deploys them through the
:class:`~trading_pipeline.bots.deploy_store.DeploymentStore`: valid ones are written as new
versions, invalid ones are refused with their reason (in the metadata and the bot's history)
and their bot keeps what it has. Before the selector has decided anything, bots without an
assignment get their spec default. The job is requested by the selector's decision sensor
(a bot's choice changed) and by :func:`champion_change_sensor` (the champion model moved).
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from trading_pipeline.defs.history.metadata import markdown_table
from trading_pipeline.settings import Settings

if TYPE_CHECKING:
    from trading_pipeline.bots.deploy_store import DeploymentStore

GROUP = "bots"
DEPLOY_JOB = "deploy_assignments"
CHAMPION_POLL_S = 60
RISK_POLL_S = 60
TRIGGER_TAGS = ("selector/decision_ids", "selector/bots", "selector/model_version", "trigger")


class BotsRuntime(dg.ConfigurableResource):
    """Where the fleet's assignments, decisions, history and MLflow store live."""

    data_dir: str = "data"
    bots_dir: str | None = None
    history_dir: str | None = None
    tracking_uri: str | None = None
    market: str = "spot"
    ledger_mode: str = "paper"  # whose ledgers the fleet risk check reads: paper or live
    fleet_daily_loss: float = 0.10

    @classmethod
    def from_settings(cls, settings: Settings) -> "BotsRuntime":
        return cls(
            data_dir=str(settings.data_dir),
            bots_dir=str(settings.bots_dir),
            history_dir=str(settings.history_dir),
            tracking_uri=settings.mlflow_tracking_uri,
            market=settings.market,
        )

    @property
    def bots_path(self) -> Path:
        return Path(self.bots_dir) if self.bots_dir else Path(self.data_dir) / "bots"

    @property
    def history_path(self) -> Path:
        return Path(self.history_dir) if self.history_dir else Path(self.data_dir) / "history"

    def store(self) -> "DeploymentStore":
        from trading_pipeline.bots.deploy_store import DeploymentStore

        return DeploymentStore(self.bots_path)

    def decisions(self) -> dict[str, Any]:
        """The selector's choice in force per bot; empty before the selector ever decided."""
        try:
            from trading_pipeline.selector.decisions import DecisionStore, decisions_path
        except ImportError:
            return {}
        path = decisions_path(self.data_dir)
        if not path.exists():
            return {}
        return dict(DecisionStore(path).current())

    def read_tracking_uri(self) -> str:
        """The MLflow store to read (the embedded one is not created by reading)."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(Path(self.data_dir) / 'mlflow' / 'mlflow.db').resolve()}"

    def write_tracking_uri(self) -> str:
        from trading_pipeline.tracking import default_tracking_uri

        return self.tracking_uri or default_tracking_uri(self.data_dir)

    def champion_version(self) -> int | None:
        """The version the ``strategy-selector`` champion alias points at (None: no champion)."""
        from trading_pipeline.selector.decide import champion_ref, open_registry

        registry = open_registry(self.read_tracking_uri())
        if registry is None:
            return None
        ref = champion_ref(registry)
        return None if ref is None or ref.version is None else int(ref.version)


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
)
def bot_assignments(
    context: dg.AssetExecutionContext, config: DeployConfig, bots_runtime: BotsRuntime
) -> dg.MaterializeResult:
    from trading_pipeline.bots.fleet import candidates_from_decisions

    store = bots_runtime.store()
    decisions = bots_runtime.decisions()
    tags = context.run.tags if context.run is not None else {}
    lineage = {
        "dagster_run_id": context.run.run_id,
        **{k: tags[k] for k in TRIGGER_TAGS if k in tags},
    }
    candidates = candidates_from_decisions(
        decisions, store.all_current(), seed_defaults=config.seed_defaults, lineage=lineage
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
            ),
            "bots_dir": dg.MetadataValue.path(str(store.bots_dir)),
        }
    )


deploy_assignments = dg.define_asset_job(
    DEPLOY_JOB,
    selection=[bot_assignments],
    description="Build assignments from the selector's decisions, validate and deploy them.",
)


@dg.sensor(
    job=deploy_assignments,
    minimum_interval_seconds=CHAMPION_POLL_S,
    description="Requests deploy_assignments when the strategy-selector champion alias moves.",
)
def champion_change_sensor(
    context: dg.SensorEvaluationContext, bots_runtime: BotsRuntime
) -> dg.SensorResult | dg.SkipReason:
    version = bots_runtime.champion_version()
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
    context: dg.SensorEvaluationContext, bots_runtime: BotsRuntime
) -> dg.SkipReason:
    import time

    from trading_pipeline.bots.fleet import check_fleet_loss, close_all, open_ledgers

    ledgers = open_ledgers(bots_runtime.bots_path, bots_runtime.ledger_mode)
    if not ledgers:
        return dg.SkipReason(f"no {bots_runtime.ledger_mode} ledgers yet")
    try:
        risk = check_fleet_loss(
            bots_runtime.store(),
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


@dg.definitions
def defs() -> dg.Definitions:
    """This module's definitions (a module with a ``@dg.definitions`` function contributes only
    what that function returns, so the asset, job and sensor are listed here)."""
    return dg.Definitions(
        assets=[bot_assignments],
        jobs=[deploy_assignments],
        sensors=[champion_change_sensor, fleet_risk_sensor],
        resources={"bots_runtime": BotsRuntime.from_settings(Settings.from_env())},
    )
