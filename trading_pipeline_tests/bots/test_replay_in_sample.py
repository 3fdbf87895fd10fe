"""``paper replay`` says which part of each bot's replay its parameters were tuned on: the study
whose newest fold chose them is found in the Optuna storage, and the overlap with its fold
windows is ``in_sample_fraction`` in the JSON, IN-SAMPLE in the text and the report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
import polars as pl
import pytest

from trading_pipeline.bots.assignment import default_assignment
from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.bots.tuned import TuningWindows, in_sample
from trading_pipeline.cli import main
from trading_pipeline.discovery.catalog import StudyCatalog
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import make_bars

from .conftest import START

DAY = timedelta(days=1)


def test_in_sample_is_the_share_of_the_period_inside_the_tuning_windows() -> None:
    d = lambda n: START + n * DAY  # noqa: E731
    tuned = TuningWindows(
        "s", (("train 1", d(0), d(10)), ("test 1", d(10), d(14)), ("train 2", d(4), d(14)))
    )
    inside = in_sample(d(2), d(6), tuned)
    assert inside["fraction"] == 1.0 and inside["study"] == "s"
    half = in_sample(d(10), d(18), tuned)
    assert half["fraction"] == 0.5
    assert half["periods"] == [[d(10).isoformat(), d(14).isoformat()]]
    after = in_sample(d(20), d(30), tuned)
    assert after["fraction"] == 0.0 and after["periods"] == []
    assert "out of sample" in after["note"]
    unknown = in_sample(d(0), d(1), None)
    assert unknown["fraction"] is None and "no tuning study" in unknown["note"]


@pytest.mark.slow  # tuning into a real journal storage, fleet replays
def test_paper_replay_marks_the_tuning_windows_of_the_deployed_parameters(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_factory: Callable[[Mapping[str, pl.DataFrame]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    frames = {
        s: make_bars(900, seed=i, vol=0.006, start=START)
        for i, s in enumerate(("BTCUSDT", "ETHUSDT", "BNBUSDT"))
    }
    data = store_factory(frames)
    monkeypatch.setenv("TP_DATA_DIR", str(data))
    monkeypatch.setenv("TP_BOTS_DIR", str(tmp_path / "bots"))
    layout = DataLayout.under(data)
    # sma_cross tuned on BTC's first 600 bars (2020-01-01 .. 2020-01-25): the rest is unseen
    fam = get_family("sma_cross")
    tuned_bars = frames["BTCUSDT"].head(600)
    spec = make_spec(
        tuned_bars, fam, series="spot-BTCUSDT-1h", interval="1h", walk=WalkForward(folds=2)
    )
    storage = StudyCatalog(layout).storage
    tune(tuned_bars, fam, spec=spec, storage=storage, n_trials=4, seed=1)
    last = optuna.load_study(study_name=spec.fold_study(1), storage=storage)
    params = fam.validate(last.best_params)
    bot1 = default_assignment("bot1").with_(params=params, symbols=("BTCUSDT",))
    assert DeploymentStore(tmp_path / "bots").deploy([bot1]).ok

    argv = ["paper", "replay", "--from", "2020-01-10", "--to", "2020-01-15", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    b1 = report["bots"]["bot1"]
    assert b1["in_sample_fraction"] == 1.0 and b1["in_sample"]["study"] == spec.study_group
    assert report["in_sample_bots"] == ["bot1"]
    assert report["bots"]["bot3"]["in_sample_fraction"] is None  # spec default: no study
    saved = json.loads((tmp_path / "bots/replays/20200110-20200115/report.json").read_text())
    assert saved["bots"]["bot1"]["in_sample_fraction"] == 1.0

    # straddling the end of the tuned bars (2020-01-25 23:00 is the last one): a part
    assert main(["paper", "replay", "--from", "2020-01-24", "--to", "2020-01-27"]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("bot1"))
    assert f"IN-SAMPLE 50% ({spec.study_group})" in line
    assert "IN-SAMPLE: bot1" in text
    # after every tuning window: out of sample
    argv = ["paper", "replay", "--from", "2020-01-28", "--to", "2020-02-05", "--json"]
    assert main(argv) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["bots"]["bot1"]["in_sample_fraction"] == 0.0 and after["in_sample_bots"] == []
    assert datetime.fromisoformat(after["from"]) == datetime(2020, 1, 28, tzinfo=UTC)
