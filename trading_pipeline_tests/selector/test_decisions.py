"""The decisions table: round trip, choice in force per bot, atomic batches, the inputs hash."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.selector.decisions import (
    HISTORY_SCHEMA,
    Decision,
    DecisionStore,
    decisions_path,
    inputs_hash,
)
from trading_pipeline_tests.selector.decision_support import regime_bars

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def decision(bot: str = "bot1", at: datetime = T0, choice: str = "cash", **kw: object) -> Decision:
    fields: dict[str, object] = {
        "decided_at": at,
        "bot": bot,
        "choice": choice,
        "family": "cash" if choice == "cash" else choice.split("@")[0],
        "version": 0 if choice == "cash" else 1,
        "params": {} if choice == "cash" else {"fast": 10, "slow": 50},
        "series": "" if choice == "cash" else "spot-BTCUSDT-1h",
        "symbols": () if choice == "cash" else ("BTCUSDT",),
        "regime": "bull",
        "probabilities": {"cash": 0.25, "sma_cross@spot-BTCUSDT-1h": 0.75},
        "inputs_hash": "abc",
        "model_name": "strategy-selector",
        "model_version": 3,
        "model_run_id": "run-1",
        "changed": False,
        "reason": "test",
    }
    fields.update(kw)
    return Decision(**fields)  # type: ignore[arg-type]


def test_record_and_read_back_every_field(tmp_path: Path) -> None:
    store = DecisionStore(decisions_path(tmp_path))
    d = decision(choice="sma_cross@spot-BTCUSDT-1h", changed=True, proposed="x", streak=2)
    new_id = store.record(d)
    got = store.latest("bot1")
    assert got is not None and got.id == new_id
    assert replace(got, id=None) == d
    assert got.decided_at.tzinfo is not None and got.decided_at == T0
    assert store.path == tmp_path / "selector" / "decisions.sqlite"
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_current_is_each_bots_latest_and_before_filters(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "d.sqlite")
    hour = timedelta(hours=1)
    store.record_all(
        [
            decision("bot1", T0, "cash"),
            decision("bot2", T0, "cash"),
            decision("bot1", T0 + hour, "sma_cross@spot-BTCUSDT-1h", changed=True),
        ]
    )
    # recorded later but decided earlier (a replay): time wins over insertion order
    store.record(decision("bot2", T0 - hour, "sma_cross@spot-BTCUSDT-1h"))
    now = store.current()
    assert {b: d.choice for b, d in now.items()} == {
        "bot1": "sma_cross@spot-BTCUSDT-1h",
        "bot2": "cash",
    }
    before = store.current(before=T0 + hour)
    assert before["bot1"].choice == "cash"
    assert store.current(before=T0 - hour) == {}
    latest2 = store.latest("bot2", before=T0)
    assert latest2 is not None and latest2.decided_at == T0 - hour


def test_history_is_a_typed_frame_oldest_first(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "d.sqlite")
    assert store.history().schema == pl.Schema(HISTORY_SCHEMA)
    ids = [store.record(decision("bot1", T0 + timedelta(minutes=5 * i))) for i in range(3)]
    store.record(decision("bot2", T0, changed=True))
    frame = store.history(bot="bot1")
    assert frame.schema == pl.Schema(HISTORY_SCHEMA)
    assert frame["id"].to_list() == ids
    assert frame["decided_at"][0] == T0
    since = store.history(since=T0 + timedelta(minutes=5))
    assert since["id"].to_list() == ids[1:]
    assert store.history()["changed"].to_list() == [False, True, False, False]


def test_a_batch_is_all_or_nothing(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "d.sqlite")
    naive = decision("bot2", datetime(2024, 3, 1, 12))  # no time zone: refused mid-batch
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_all([decision("bot1"), naive])
    assert store.history().height == 0


def test_reading_a_missing_table_creates_nothing(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "none" / "d.sqlite")
    assert store.current() == {} and store.latest("bot1") is None
    assert store.history().height == 0
    assert not (tmp_path / "none").exists()


def test_inputs_hash_depends_on_the_bars_only() -> None:
    bars = {"spot-BTCUSDT-1h": regime_bars(50, seed=1), "spot-ETHUSDT-1h": regime_bars(50, seed=2)}
    same = {k: df.clone() for k, df in reversed(bars.items())}
    assert inputs_hash(bars) == inputs_hash(same)
    moved = dict(bars, **{"spot-BTCUSDT-1h": bars["spot-BTCUSDT-1h"].head(49)})
    assert inputs_hash(moved) != inputs_hash(bars)
    nudged = bars["spot-ETHUSDT-1h"].with_columns(pl.col("close") * 1.000001)
    assert inputs_hash(dict(bars, **{"spot-ETHUSDT-1h": nudged})) != inputs_hash(bars)
    assert inputs_hash(bars, extra={"version": 1}) != inputs_hash(bars, extra={"version": 2})


def test_to_json_is_plain(tmp_path: Path) -> None:
    out = decision(choice="sma_cross@spot-BTCUSDT-1h").to_json()
    assert out["decided_at"] == "2024-03-01T12:00:00+00:00"
    assert out["symbols"] == ["BTCUSDT"]
