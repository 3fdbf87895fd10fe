"""The deployment store: versioned atomic writes, append-only history, refusals keep the old
assignment, batch re-allocation, the HALT file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trading_pipeline.bots.assignment import Assignment, RiskLimits, default_assignment
from trading_pipeline.bots.deploy_store import DeploymentStore, read_halt
from trading_pipeline.bots.spec import FLEET
from trading_pipeline.errors import UserInputError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> DeploymentStore:
    return DeploymentStore(tmp_path / "bots", clock=lambda: NOW)


def defaults() -> list[Assignment]:
    return [default_assignment(b) for b in FLEET]


def test_first_deploy_writes_version_1_for_every_bot(store: DeploymentStore) -> None:
    report = store.deploy(defaults())
    assert report.ok and len(report.deployed) == 5
    bot1 = store.current("bot1")
    assert bot1 is not None and bot1.version == 1 and bot1.family == "sma_cross"
    assert bot1.created_at == "2026-03-01T12:00:00+00:00"
    on_disk = json.loads(store.assignment_path("bot1").read_text())
    assert on_disk["fingerprint"] == bot1.fingerprint
    assert [h["event"] for h in store.history("bot1")] == ["deployed"]
    assert not list(store.bots_dir.rglob("*.part"))  # nothing half-written left behind


def test_same_fingerprint_is_unchanged_and_a_change_bumps_the_version(
    store: DeploymentStore,
) -> None:
    store.deploy(defaults())
    again = store.deploy([default_assignment("bot1", lineage={"model_version": 2})])
    assert [a.bot for a in again.unchanged] == ["bot1"] and not again.deployed
    new = default_assignment("bot1").with_(params={"fast": 20, "slow": 100})
    report = store.deploy([new])
    assert [(a.bot, a.version) for a in report.deployed] == [("bot1", 2)]
    current = store.current("bot1")
    assert current is not None and current.params["fast"] == 20
    assert [h["version"] for h in store.history("bot1")] == [1, 2]


def test_invalid_assignment_is_refused_and_the_bot_keeps_the_old_one(
    store: DeploymentStore,
) -> None:
    store.deploy(defaults())
    before = store.assignment_path("bot1").read_bytes()
    bad = default_assignment("bot1").with_(params={"fast": 500, "slow": 50})
    unknown = default_assignment("bot2").with_(family="martingale", family_version=1)
    report = store.deploy([bad, unknown])
    assert not report.deployed
    reasons = {r.bot: r.reason for r in report.refused}
    assert "outside" in reasons["bot1"] and "martingale" in reasons["bot2"]
    assert store.assignment_path("bot1").read_bytes() == before
    last = store.history("bot1")[-1]
    assert last["event"] == "refused" and last["kept_version"] == 1
    assert last["candidate"]["params"]["fast"] == 500


def test_batch_reallocation_is_checked_as_a_whole(store: DeploymentStore) -> None:
    store.deploy(defaults())
    # bot1 30% → 40% alone would be 110%; with bot2 25% → 15% in the same batch it is 100%
    up = default_assignment("bot1", capital_fraction=0.40)
    down = default_assignment("bot2", capital_fraction=0.15)
    alone = store.deploy([up])
    assert [r.bot for r in alone.refused] == ["bot1"] and "110.0%" in alone.refused[0].reason
    both = store.deploy([up, down])
    assert both.ok and {a.bot for a in both.deployed} == {"bot1", "bot2"}
    total = sum(a.capital_fraction for a in store.all_current().values())
    assert total == pytest.approx(1.0)


def test_refused_decrease_makes_the_paired_increase_refused_too(store: DeploymentStore) -> None:
    store.deploy(defaults())
    up = default_assignment("bot1", capital_fraction=0.40)
    bad_down = default_assignment("bot2", capital_fraction=0.15).with_(interval="9m")
    report = store.deploy([up, bad_down])
    assert {r.bot for r in report.refused} == {"bot1", "bot2"}
    assert sum(a.capital_fraction for a in store.all_current().values()) == pytest.approx(1.0)


def test_duplicate_bot_in_one_batch_and_bad_risk(store: DeploymentStore) -> None:
    a = default_assignment("bot1")
    b = a.with_(risk=RiskLimits(daily_loss=1.5))
    report = store.deploy([a, a, b.with_(bot="bot5", family="cash", family_version=0, params={})])
    assert [x.bot for x in report.deployed] == ["bot1"]
    assert {r.bot for r in report.refused} == {"bot1", "bot5"}
    assert store.current("bot5") is None


def test_unknown_bot_and_corrupt_file(store: DeploymentStore) -> None:
    with pytest.raises(UserInputError, match="unknown bot"):
        store.current("../etc")
    store.deploy([default_assignment("bot1")])
    store.assignment_path("bot1").write_text("{not json")
    with pytest.raises(UserInputError, match=r"assignment\.json"):
        store.current("bot1")


def test_halt_and_resume(store: DeploymentStore) -> None:
    assert store.halted() is None and store.resume() is False
    path = store.halt("fleet daily loss 11% > 10%", by="fleet-risk", extra={"loss": 0.11})
    assert path.name == "HALT"
    content = read_halt(store.bots_dir)
    assert content == {
        "reason": "fleet daily loss 11% > 10%",
        "at": "2026-03-01T12:00:00+00:00",
        "by": "fleet-risk",
        "loss": 0.11,
    }
    with pytest.raises(UserInputError):
        store.halt("  ")
    assert store.resume() is True and store.halted() is None
