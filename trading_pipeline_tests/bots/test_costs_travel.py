"""The cost model a strategy was tuned with travels to the bot: study → candidate → decision →
assignment → paper fills. Tuned at fee 0.002, deployed, replayed: every fill pays 0.002."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.engine import backtest, buy_and_hold
from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.bots.assignment import (
    LEGACY_COSTS,
    Assignment,
    TradingCosts,
    default_assignment,
    validate_assignment,
)
from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.bots.fleet import candidates_from_decisions
from trading_pipeline.bots.replay import (
    backtest_window,
    fee_diffs,
    reconcile,
    replay_bot,
    replay_report,
)
from trading_pipeline.bots.spec import FLEET
from trading_pipeline.discovery.ranking import rank
from trading_pipeline.discovery.results import collect
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import WalkForward, load_spec, make_spec, tune
from trading_pipeline.errors import UserInputError
from trading_pipeline.selector.dataset import candidate_from_result
from trading_pipeline.selector.decide import decide_once
from trading_pipeline.selector.decisions import Decision, DecisionStore
from trading_pipeline.selector.model import CASH, Candidate
from trading_pipeline.strategies.registry import get_family

SERIES = "spot-BTCUSDT-1h"
START = datetime(2021, 1, 1, tzinfo=UTC)
SMA = get_family("sma_cross")
NO_LIMITS = {"daily_loss": 1.0, "max_position_fraction": 1.0, "max_drawdown": 1.0}


class OneChoiceModel:
    """A selector stand-in that always prefers its one tuned candidate (the test is about
    what the candidate carries, not about the model)."""

    def __init__(self, candidate: Candidate) -> None:
        self.candidates = (CASH, candidate)
        self.series = (candidate.series,)
        self.interval = candidate.interval
        self.warmup_bars = 10
        self.feature_names: tuple[str, ...] = ()
        self.chosen = candidate.id

    def predict_proba(self, state: Mapping[str, float]) -> dict[str, float]:
        return {CASH.id: 0.0, self.chosen: 1.0}


def _state(bars: Mapping[str, pl.DataFrame], *, interval: str, **_: Any) -> dict[str, float]:
    return {"rows": float(sum(df.height for df in bars.values()))}


def _fee_rates(fills: pl.DataFrame) -> list[float]:
    return (fills["fee"] / (fills["qty"] * fills["price"])).to_list()


def test_tuned_at_fee_0002_deployed_and_replayed_the_fills_pay_0002(tmp_path: Path) -> None:
    bars = random_walk_bars(2400, seed=7, vol=0.006, start=START)
    storage = open_storage(f"journal:{tmp_path / 'optuna' / 'studies.log'}", data_dir=tmp_path)
    tuned = CostModel(fee=0.002, slippage_bps=3.0)
    spec = make_spec(
        bars, SMA, series=SERIES, interval="1h", walk=WalkForward(folds=2), costs=tuned
    )
    tune(bars, SMA, spec=spec, storage=storage, n_trials=8, seed=1)

    # 1. the study records its cost model: user attrs, the summary, the ranking
    assert (tmp_path / "optuna" / "studies.log").stat().st_size > 0
    study = optuna.load_study(study_name=spec.fold_study(0), storage=storage)
    assert study.user_attrs["fee"] == 0.002
    assert study.user_attrs["slippage"] == pytest.approx(0.0003)
    loaded = load_spec(spec.study_group, storage)  # as the selector re-reads it
    result = collect(bars, SMA, spec=loaded, storage=storage)
    assert result.summary()["costs"] == {"fee": 0.002, "slippage": pytest.approx(0.0003)}
    assert rank([result]).row(0, named=True)["fee"] == 0.002

    # 2. the selector's candidate and its decision carry it (through the decisions table)
    candidate = candidate_from_result(result)
    assert (candidate.fee, candidate.slippage) == (0.002, pytest.approx(0.0003))
    assert Candidate.from_json(json.loads(json.dumps(candidate.to_json()))) == candidate
    now = START + timedelta(hours=bars.height)
    decisions = decide_once(
        OneChoiceModel(candidate), {SERIES: bars}, now, {}, state_fn=_state, fleet=FLEET
    )
    bot1 = next(d for d in decisions if d.bot == "bot1")
    assert bot1.family == "sma_cross" and bot1.fee == 0.002
    store = DecisionStore(tmp_path / "selector" / "decisions.sqlite")
    store.record_all(decisions)
    in_force = store.current()["bot1"]
    assert (in_force.fee, in_force.slippage) == (0.002, pytest.approx(0.0003))

    # 3. the assignment carries it, validated, into the deployment store's file
    candidates = candidates_from_decisions(
        {"bot1": in_force},
        {},
        seed_defaults=False,
        now=now,  # a replay: its own clock
    )
    candidates = [c.with_(risk=c.risk.from_dict(NO_LIMITS)) for c in candidates]
    deploy = DeploymentStore(tmp_path / "bots")
    report = deploy.deploy(candidates)
    assert report.ok and [a.bot for a in report.deployed] == ["bot1"]
    written = json.loads((tmp_path / "bots" / "bot1" / "assignment.json").read_text())
    assert written["costs"] == {"fee": 0.002, "slippage": pytest.approx(0.0003)}
    assert written["lineage"]["costs"] == "the tuned study"
    a = deploy.current("bot1")
    assert a is not None and a.cost_model.fee == 0.002
    assert a.cost_model.slippage_bps == pytest.approx(3.0)

    # 4. the replay's paper fills pay it, and reconcile with the backtester at the same costs
    start, end = START + timedelta(hours=200), START + timedelta(hours=bars.height)
    r = replay_bot(
        a, {"BTCUSDT": bars}, start=start, end=end, initial_cash=300.0, workdir=tmp_path / "r"
    )
    fills = pl.read_database("SELECT * FROM fills", sqlite3.connect(str(r.ledger_path)))
    assert fills.height >= 4  # several round trips
    assert _fee_rates(fills) == pytest.approx([0.002] * fills.height, rel=1e-9)
    assert fee_diffs(fills, 0.002) == [] and fee_diffs(fills, 0.001) != []
    s, e = backtest_window(bars, start, end)
    bt = backtest(
        bars,
        a.family,
        dict(a.params),
        cash=300.0,
        interval="1h",
        detail=True,
        start=s,
        stop=e,
        costs=a.cost_model,
    )
    assert bt.trades is not None
    diffs = reconcile(
        r.fills,
        bt.trades,
        replay_final_equity=r.final,
        backtest_final_equity=bt.metrics["final_equity"],
        costs=a.cost_model,
    )
    assert diffs == []


def test_an_assignment_written_before_costs_trades_at_the_defaults_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = default_assignment("bot1").to_dict()
    del legacy["costs"], legacy["fingerprint"]
    legacy["risk"], legacy["symbols"] = NO_LIMITS, ["BTCUSDT"]
    path = tmp_path / "bots" / "bot1" / "assignment.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(legacy))
    store = DeploymentStore(tmp_path / "bots")
    a = store.current("bot1")
    assert a is not None and a.costs is None and a.costs_are_default
    assert a.cost_model == CostModel()
    bars = random_walk_bars(1500, seed=3, vol=0.006, start=START)
    with caplog.at_level(logging.WARNING, logger="trading_pipeline.bots.runner"):
        r = replay_bot(
            a,
            {"BTCUSDT": bars},
            start=START + timedelta(days=10),
            end=START + timedelta(days=60),
            initial_cash=300.0,
            workdir=tmp_path / "r",
        )
    assert r.fills.height > 0
    assert _fee_rates(r.fills) == pytest.approx([0.001] * r.fills.height, rel=1e-9)
    assert any(LEGACY_COSTS in m for m in caplog.messages)
    # re-deployed, it gets the defaults written in, with its lineage saying why
    report = store.deploy([a])
    again = store.current("bot1")
    assert report.deployed and again is not None and again.costs == TradingCosts()
    assert again.version == a.version + 1 and "no cost model" in again.lineage["costs"]


@pytest.mark.parametrize(
    ("costs", "why"),
    [
        (TradingCosts(fee=float("nan")), "cost fee must be a finite number, got nan"),
        (TradingCosts(fee=0.05), "cost fee=0.05 must be in [0, 0.05)"),
        (TradingCosts(slippage=-0.0001), "cost slippage=-0.0001 must be in [0, 0.05)"),
        (TradingCosts(slippage=float("inf")), "cost slippage must be a finite number, got inf"),
    ],
)
def test_the_deploy_gate_refuses_costs_that_are_not_a_market(costs: TradingCosts, why: str) -> None:
    a = default_assignment("bot1").with_(costs=costs)
    with pytest.raises(UserInputError) as err:
        validate_assignment(a, others={})
    assert str(err.value) == f"bot1: {why}"


def test_costs_in_an_assignment_file_must_be_numbers() -> None:
    data = default_assignment("bot1").to_dict()
    data["costs"] = {"fee": "cheap", "slippage": 0.0}
    with pytest.raises(UserInputError, match="costs must be numbers"):
        Assignment.from_dict(data)
    data["costs"] = {"fee": 0.001}
    with pytest.raises(UserInputError, match="both fee and slippage"):
        Assignment.from_dict(data)


def test_a_decisions_table_from_before_costs_gets_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    with sqlite3.connect(path) as conn:  # the table as the first release created it
        conn.execute(
            "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, decided_at_us INTEGER"
            " NOT NULL, bot TEXT NOT NULL, choice TEXT NOT NULL, family TEXT NOT NULL, version"
            " INTEGER NOT NULL, params TEXT NOT NULL, series TEXT NOT NULL, symbols TEXT NOT"
            " NULL, regime TEXT NOT NULL, probabilities TEXT NOT NULL, inputs_hash TEXT NOT NULL,"
            " model_name TEXT NOT NULL, model_version INTEGER, model_run_id TEXT, changed INTEGER"
            " NOT NULL, reason TEXT NOT NULL, proposed TEXT, streak INTEGER NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO decisions (decided_at_us, bot, choice, family, version, params, series,"
            " symbols, regime, probabilities, inputs_hash, model_name, changed, reason, streak)"
            " VALUES (1, 'bot1', 'cash', 'cash', 0, '{}', '', '[]', 'bull', '{}', 'h', 'm', 1,"
            " 'old', 0)"
        )
    store = DecisionStore(path)
    old = store.current()["bot1"]
    assert old.fee is None and old.slippage is None
    new = Decision(
        decided_at=datetime(2026, 1, 2, tzinfo=UTC),
        bot="bot1",
        choice="sma_cross@spot-BTCUSDT-1h",
        family="sma_cross",
        version=1,
        params={"fast": 5, "slow": 20},
        series=SERIES,
        symbols=("BTCUSDT",),
        regime="bull",
        probabilities={"sma_cross@spot-BTCUSDT-1h": 1.0},
        inputs_hash="h2",
        model_name="m",
        model_version=2,
        model_run_id=None,
        changed=True,
        reason="new",
        fee=0.0015,
        slippage=0.0001,
    )
    store.record(new)
    got = store.current()["bot1"]
    assert (got.fee, got.slippage) == (0.0015, 0.0001)
    assert store.history()["fee"].to_list() == [None, 0.0015]


TWO_BOTS = """
[[bots]]
name = "cheap"
symbols = ["BTCUSDT"]
interval = "1h"
families = ["sma_cross"]
capital_fraction = 0.6

[[bots]]
name = "dear"
symbols = ["ETHUSDT"]
interval = "1h"
families = ["sma_cross"]
capital_fraction = 0.4
"""


def test_the_paper_replay_charges_each_bot_its_own_costs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``paper replay`` over a user's two-bot fleet: each bot's fills pay its assignment's fee,
    and its buy-and-hold benchmark pays the same costs."""
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(TWO_BOTS)
    monkeypatch.setenv("TP_FLEET_FILE", str(fleet))
    frames = {
        s: random_walk_bars(1500, seed=i, vol=0.006, start=START)
        for i, s in enumerate(("BTCUSDT", "ETHUSDT"))
    }

    def load(symbols: tuple[str, ...], interval: str, warmup: int) -> dict[str, pl.DataFrame]:
        return {s: frames[s] for s in symbols}

    def sma(bot: str, symbol: str, fee: float, fraction: float) -> Assignment:
        params = {"fast": 5, "slow": 20}
        costs = TradingCosts(fee=fee, slippage=0.0)
        return Assignment(bot, 1, (symbol,), "1h", "sma_cross", 1, params, fraction, costs=costs)

    assignments = {
        "cheap": sma("cheap", "BTCUSDT", 0.0005, 0.6),
        "dear": sma("dear", "ETHUSDT", 0.004, 0.4),
    }
    start, end = START + timedelta(days=5), START + timedelta(days=50)
    r = replay_report(tmp_path / "out", start=start, end=end, load=load, assignments=assignments)
    assert set(r["bots"]) == {"cheap", "dear"}
    assert r["bots"]["cheap"]["initial"] == pytest.approx(600.0)
    for bot, fee in (("cheap", 0.0005), ("dear", 0.004)):
        fills = r["bots"][bot]["fills"]
        assert len(fills) > 4
        assert [f["fee"] / (f["qty"] * f["price"]) for f in fills] == pytest.approx(
            [fee] * len(fills), rel=1e-9
        )
    for bot, symbol, fee in (("cheap", "BTCUSDT", 0.0005), ("dear", "ETHUSDT", 0.004)):
        s, e = backtest_window(frames[symbol], start, end)
        costs = CostModel(fee=fee, slippage_bps=0.0)
        held = buy_and_hold(frames[symbol], costs=costs, interval="1h", start=s, stop=e)
        assert r["bots"][bot]["buy_and_hold_return"] == pytest.approx(held["total_return"])
