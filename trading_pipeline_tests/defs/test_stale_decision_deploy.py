"""The Dagster deploy path never deploys a decision older than its horizon as live: an audit
decision (``select --at 2024-06-01 --record``) is refused with one line, recorded in the
materialization and in the bot's history, and the bot keeps its assignment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.selector.decisions import DecisionStore, decisions_path
from trading_pipeline_tests.defs.test_bots_defs import decision, deploy, runtime

pytestmark = pytest.mark.slow  # Dagster instance runs


def test_an_old_decision_is_refused_and_recorded(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    rt = runtime(tmp_path)
    deploy(rt, instance)  # spec defaults, version 1 each
    store = DecisionStore(decisions_path(rt.data_dir))
    old = datetime(2024, 6, 1, 12, tzinfo=UTC)
    store.record(decision("bot1", "sma_cross", {"fast": 20, "slow": 80}, decided_at=old))
    store.record(decision("bot3", "momentum", {"window": 48}))  # fresh: deployed
    mat = deploy(rt, instance)
    assert mat.metadata["stale_decisions"].value == 1
    assert mat.metadata["decisions_used"].value == 1
    refusals: Any = mat.metadata["refusals"].value
    line = next(r["reason"] for r in refusals if r["bot"] == "bot1")
    assert "2024-06-01 12:00 UTC is older than its horizon" in line and "\n" not in line
    bots = DeploymentStore(rt.layout.bots_dir)
    bot1 = bots.current("bot1")
    assert bot1 is not None and bot1.version == 1 and bot1.params.get("fast") != 20
    last = bots.history("bot1")[-1]
    assert last["event"] == "refused" and last["stale_decision"] and last["kept_version"] == 1
    bot3 = bots.current("bot3")
    assert bot3 is not None and bot3.family == "momentum" and bot3.version == 2
