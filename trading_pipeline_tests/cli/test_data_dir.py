"""With only ``--data-dir`` (no ``TP_*`` in the environment), the chain of verbs writes every
artifact where :class:`~trading_pipeline.settings.DataLayout` says, and nothing elsewhere."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from trading_pipeline.cli import main
from trading_pipeline.history.layout import Series
from trading_pipeline.history.mirror import running_mirror
from trading_pipeline.settings import DataLayout
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_range

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")  # bot1's universe
FAMILIES = ("sma_cross", "momentum")  # bot1's and bot3's families, both allowed on BTCUSDT
TUNE = ["--trials", "6", "--folds", "2", "--seed", "3"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, f"{argv[0]}: {err}"
    return out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_verb_with_only_data_dir_writes_where_the_layout_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in [v for v in os.environ if v.startswith("TP_") or v == "MLFLOW_TRACKING_URI"]:
        monkeypatch.delenv(var)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # anything written relative to the cwd would show up here
    data = tmp_path / "data"
    layout = DataLayout(data_dir=data, history_dir=data / "history", bots_dir=data / "bots")
    vision = tmp_path / "vision"
    for seed, symbol in enumerate(SYMBOLS):
        make_vision_tree(
            vision, Series("spot", symbol, "1h"), months=month_range((2024, 1), 4), seed=seed
        )
    d = ["--data-dir", str(data)]

    with running_mirror(vision) as mirror:
        out = _run(
            capsys, "fetch", *d, "--symbol", ",".join(SYMBOLS), "--interval", "1h",
            "--from", "2024-01-01", "--to", "2024-04-30",
            "--base-url", mirror.url, "--listing-url", mirror.url,
        )  # fmt: skip
    assert "files: 12 new" in out
    manifest = json.loads(layout.history.manifest_path.read_text())
    assert manifest
    btc = layout.history.parquet_path(Series("spot", "BTCUSDT", "1h"), 2024, 4)
    assert btc.is_file()

    store = ["--symbol", "BTCUSDT", "--interval", "1h", *d]
    bt = json.loads(_run(capsys, "backtest", "--strategy", "sma_cross", *store, "--json"))
    assert bt["bars"] == 24 * (31 + 29 + 31 + 30)  # read from DataLayout's history store

    regimes = json.loads(_run(capsys, "regimes", *store, "--json"))
    assert regimes["bars"] == bt["bars"] and regimes["periods"]

    studies = []
    for family in FAMILIES:
        tuned = json.loads(_run(capsys, "tune", "--strategy", family, *store, *TUNE, "--json"))
        studies.append(tuned["study"])
        assert tuned["mlflow_run_id"]
    assert layout.optuna_journal_path.is_file() and layout.optuna_journal_path.stat().st_size
    assert layout.mlflow_db_path.is_file()

    # No verb writes top_strategies.json (the Dagster asset `top_strategies` does): write the
    # minimal ranking it would, naming the two studies, where the layout says it lives.
    layout.top_strategies_path.parent.mkdir(
        parents=True, exist_ok=True
    )  # tune cached its audits there
    layout.top_strategies_path.write_text(json.dumps({"ranked": [{"study": s} for s in studies]}))
    trained = json.loads(_run(capsys, "selector", "train", *d, "--json"))
    assert trained["version"] == 1
    assert any(layout.selector_dir.iterdir())
    assert any(p.is_file() for p in layout.mlflow_artifacts_dir.rglob("*"))

    report = json.loads(
        _run(capsys, "paper", "replay", "--from", "2024-03-01", "--to", "2024-03-31", *d, "--json")
    )
    assert report["capital"] == 1000.0 and set(report["bots"]) >= {"bot1", "bot3"}
    replay = layout.replay_dir(date(2024, 3, 1), date(2024, 3, 31))
    assert (replay / "report.json").is_file() and (replay / "equity.png").is_file()

    shown = json.loads(_run(capsys, "data-layout", *d, "--json"))
    assert shown == dict(layout.table())
    assert sorted(p.name for p in data.iterdir()) == [
        "bots", "discovery", "history", "mlflow", "optuna", "selector",
    ]  # fmt: skip
    assert list(cwd.iterdir()) == []  # nothing landed in the working directory
