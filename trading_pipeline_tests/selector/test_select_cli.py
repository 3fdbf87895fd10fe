"""``trading-pipeline select --at``: the decision at a time from stored data, for audits."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline.selector.decisions import DecisionStore, decisions_path, inputs_hash
from trading_pipeline.selector.registry import MlflowRegistry
from trading_pipeline.tracking import default_tracking_uri
from trading_pipeline_tests.fakes.store import write_store
from trading_pipeline_tests.selector.decision_support import (
    START,
    fitted_selector,
    fleet_bars,
    hours,
)

pytestmark = pytest.mark.slow  # fits a selector and replays decisions over a stored history

STORED = 1000
AT = START + hours(900) + hours(1) / 4  # bar 900 is open at AT: bars 0..899 are closed


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return fleet_bars(STORED)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, bars: dict[str, pl.DataFrame]) -> Path:
    """A data dir with a Parquet store and a registered champion (shared by the module)."""
    data = tmp_path_factory.mktemp("data")
    for key, df in bars.items():
        write_store(data / "history", key, df)
    registry = MlflowRegistry(default_tracking_uri(data), "strategy-selector")
    model = fitted_selector({k: df.head(800) for k, df in bars.items()})
    version = registry.register(model, name="strategy-selector", metrics={"heldout_net_return": 1})
    registry.promote("strategy-selector", version)
    return data


def test_bad_at_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "select", "--at", "last tuesday")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: --at must be an ISO time such as 2024-03-01T12:00Z, got 'last tuesday'"
    ]


def test_bad_hysteresis_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_DATA_DIR", str(tmp_path))
    code, _, err = run(capsys, "select", "--at", "2024-01-01", "--persist", "0")
    assert code == 2 and err.startswith("error: persist must be at least 1")


def test_without_a_champion_every_bot_holds_cash_and_nothing_is_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "empty"
    monkeypatch.setenv("TP_DATA_DIR", str(data))
    monkeypatch.delenv("TP_MLFLOW_TRACKING_URI", raising=False)
    code, out, _ = run(capsys, "select", "--at", "2024-02-01T00:00:00Z", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["model"]["version"] is None and payload["recorded"] is False
    assert [d["choice"] for d in payload["decisions"]] == ["cash"] * 5
    assert {d["reason"] for d in payload["decisions"]} == {"no champion"}
    assert not data.exists()


def test_at_before_any_stored_bar_is_an_error(
    capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_DATA_DIR", str(data_dir))
    code, _, err = run(capsys, "select", "--at", "2023-06-01T00:00Z")
    assert code == 2 and err.startswith("error: no ")
    assert len(err.strip().splitlines()) == 1


def test_select_at_is_deterministic_on_stored_data_and_records_only_when_asked(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    bars: dict[str, pl.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TP_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TP_MLFLOW_TRACKING_URI", raising=False)
    at = AT.isoformat()
    code, first, _ = run(capsys, "select", "--at", at, "--json")
    assert code == 0
    code, second, _ = run(capsys, "select", "--at", at, "--json")
    assert first == second  # same store, same champion, same table: same answer
    payload = json.loads(first)
    assert payload["model"]["version"] == 1 and payload["at"] == at
    closed = {k: df.head(900) for k, df in bars.items()}  # open_time + 1h <= AT
    digest = inputs_hash(closed, extra={"model": "strategy-selector", "version": 1})
    assert {d["inputs_hash"] for d in payload["decisions"]} == {digest}
    store = DecisionStore(decisions_path(data_dir))
    assert store.history().height == 0  # not recorded

    code, recorded, _ = run(capsys, "select", "--at", at, "--json", "--record")
    assert code == 0 and json.loads(recorded)["recorded"] is True
    assert store.history().height == 5
    again = json.loads(run(capsys, "select", "--at", at, "--json")[1])
    assert again["decisions"] == payload["decisions"]  # decisions at AT don't precede AT
    # an hour later the recorded choices are the ones in force
    later = json.loads(run(capsys, "select", "--at", (AT + hours(1)).isoformat(), "--json")[1])
    held = {d["bot"]: d["choice"] for d in payload["decisions"]}
    for d in later["decisions"]:
        if not d["changed"]:
            assert d["choice"] == held[d["bot"]]

    code, text, _ = run(capsys, "select", "--at", at)
    assert code == 0 and text.splitlines()[0].startswith(f"decision at {at}")
    assert len(text.splitlines()) == 6
