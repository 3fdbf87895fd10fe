"""The ``BotsRuntime`` resource: the fleet's knobs that are not paths (those are ``DataLake``'s)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from trading_pipeline.bots.deploy_store import DeploymentStore
    from trading_pipeline.settings import DataLayout


class BotsRuntime(dg.ConfigurableResource):
    """Which market the replays read, whose ledgers the fleet risk check reads, its limit."""

    market: str = Field(default="spot", description="the history market the replays read")
    ledger_mode: str = Field(
        default="paper", description="whose ledgers the fleet risk check reads: paper or live"
    )
    fleet_daily_loss: float = Field(
        default=0.10, description="the fleet's daily loss limit, a fraction (0.10 = 10%)"
    )

    @staticmethod
    def store(layout: DataLayout) -> DeploymentStore:
        from trading_pipeline.bots.deploy_store import DeploymentStore  # lazy: sensors load fast

        return DeploymentStore(layout.bots_dir)

    @staticmethod
    def decisions(layout: DataLayout) -> dict[str, Any]:
        """The selector's choice in force per bot; empty before the selector ever decided."""
        from trading_pipeline.selector.decisions import DecisionStore  # lazy: sensors load fast

        if not layout.decisions_path.exists():
            return {}
        return dict(DecisionStore(layout.decisions_path).current())

    @staticmethod
    def champion_version(layout: DataLayout) -> int | None:
        """The version the ``strategy-selector`` champion alias points at (None: no champion)."""
        from trading_pipeline.selector.decide import champion_ref, open_registry  # lazy: mlflow

        registry = open_registry(layout.mlflow_tracking_uri)
        if registry is None:
            return None
        ref = champion_ref(registry)
        return None if ref is None or ref.version is None else int(ref.version)
