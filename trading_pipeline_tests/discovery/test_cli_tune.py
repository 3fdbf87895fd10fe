"""`trading-pipeline tune` end to end: Parquet klines → studies → MLflow → top strategies."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import polars as pl
import pytest

from trading_pipeline.discovery.matrix import BENCHMARK, performance_matrix
from trading_pipeline.discovery.ranking import rank, top
from trading_pipeline.discovery.results import collect
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import code_fingerprint, load_spec
from trading_pipeline.history.layout import Series
from trading_pipeline.market.candles import load_store
from trading_pipeline.regimes.rules import RulesLabeller
from trading_pipeline.regimes.synthetic import synthetic_bars
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.discovery.helpers import cli_main
from trading_pipeline_tests.fakes.store import write_store

pytestmark = pytest.mark.slow  # an MLflow store

SCRIPT = (("sideways", 800), ("bull", 1000), ("bear", 1000), ("bull", 800), ("sideways", 600))
SERIES = Series("spot", "SYNUSDT", "1h")
SMA_ARGS = ("--strategy", "sma_cross", "--symbol", "SYNUSDT", "--interval", "1h")


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    write_store(data_dir / "history", SERIES, synthetic_bars(SCRIPT, seed=5))
    return data_dir


def _tune(data_dir: Path, strategy: str, capsys: pytest.CaptureFixture[str]) -> dict:
    argv = ["tune", "--strategy", strategy, "--symbol", "SYNUSDT", "--interval", "1h"]
    argv += ["--data-dir", str(data_dir), "--trials", "8", "--folds", "3", "--json"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def test_klines_to_top_strategies(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow.tracking import MlflowClient

    docs = {s: _tune(store, s, capsys) for s in ("sma_cross", "momentum")}
    doc = docs["sma_cross"]
    fp = code_fingerprint(get_family("sma_cross"))[:8]
    assert doc["study"] == f"sma_cross-v1-spot-SYNUSDT-1h-c{fp}"  # the code is part of its name
    assert set(doc["best_params"]) >= {"fast", "slow"}
    assert doc["best_params"]["fast"] < doc["best_params"]["slow"]
    for key in ("sharpe", "total_return", "max_drawdown", "trades"):
        assert key in doc["oos"] and key in doc["buy_and_hold"] and key in doc["oos_flat_restart"]
    assert doc["oos_account"].startswith("continuous")  # the flat restart is the labelled extra
    assert 0.0 <= doc["deflated_sharpe"]["probability"] <= 1.0
    assert doc["deflated_sharpe"]["n_trials"] == 24
    assert doc["pbo"] is None or 0.0 <= doc["pbo"] <= 1.0

    # the MLflow run in the embedded store under the data dir
    client = MlflowClient(f"sqlite:///{(store / 'mlflow' / 'mlflow.db').resolve()}")
    run = client.get_run(doc["mlflow_run_id"])
    assert run.data.params["study"] == doc["study"]
    assert run.data.params["best.fast"] == str(doc["best_params"]["fast"])
    assert run.data.metrics["dsr_probability"] == pytest.approx(
        doc["deflated_sharpe"]["probability"]
    )
    assert "bh_sharpe" in run.data.metrics and "oos_sharpe" in run.data.metrics
    assert run.data.metrics["oos_total_return"] == pytest.approx(doc["oos"]["total_return"])
    assert run.data.metrics["oos_total_return_flat_restart"] == pytest.approx(
        doc["oos_flat_restart"]["total_return"]
    )
    files = list((store / "history" / "parquet").rglob("*.parquet"))
    assert int(run.data.params["data_partitions"]) == len(files) == 6  # the monthly files
    assert run.data.tags["code_version"]
    # a model-training experiment; the run's source, description, data and fold steps
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.source.name"]
    note = run.data.tags["mlflow.note.content"]
    assert "out of sample" in note and "3 walk-forward folds" in note and "slippage" in note
    history = client.get_metric_history(doc["mlflow_run_id"], "fold_test_sharpe")
    assert [m.step for m in history] == [0, 1, 2]
    assert not any(k.startswith("fold0") for k in run.data.metrics)
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "spot-SYNUSDT-1h bars" or "SYNUSDT" in inp.dataset.name
    assert "market=spot/symbol=SYNUSDT/interval=1h" in inp.dataset.source
    assert inp.dataset.digest == run.data.params["data_sha256"][:16]
    assert {t.key: t.value for t in inp.tags}["mlflow.data.context"] == "walk_forward"
    artifacts = {a.path for a in client.list_artifacts(doc["mlflow_run_id"])}
    assert {"oos_equity.png", "trials.csv", "data_partitions.json"} <= artifacts
    png = Path(client.download_artifacts(doc["mlflow_run_id"], "oos_equity.png", str(store)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the studies live in the default journal file; judge them together
    storage = open_storage(None, data_dir=store)
    bars = load_store(store / "history", market="spot", symbol="SYNUSDT", interval="1h")
    results = []
    for name, d in docs.items():
        fam = get_family(name)
        results.append(collect(bars, fam, spec=load_spec(d["study"], storage), storage=storage))
    labeller = RulesLabeller(
        ma_days=10,
        slope_days=3,
        high_days=30,
        vol_window_days=30,
        min_vol_days=5,
        min_duration_days=1.0,
    )
    matrix = performance_matrix(results, labeller.label(bars))
    assert {"sma_cross", "momentum", BENCHMARK} == set(matrix["strategy"])
    assert matrix.filter(pl.col("regime") != "all")["regime"].n_unique() >= 2
    ranked = rank(results)
    assert ranked.height == 2 and ranked["rank"].to_list() == [1, 2]
    assert ranked["n_trials"].to_list() == [24, 24]
    best = top(results, 1)
    assert best.height <= 1
    assert results[0].metrics["sharpe"] == pytest.approx(docs["sma_cross"]["oos"]["sharpe"])


def test_human_output_and_rerun_adds_nothing(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tune", "--strategy", "sma_cross", "--symbol", "SYNUSDT", "--interval", "1h"]
    argv += ["--data-dir", str(store), "--trials", "6", "--folds", "2"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "deflated Sharpe probability" in out and "buy&hold" in out and "flat restart" in out
    assert cli_main(argv) == 0  # same command again: the studies are already complete
    storage = open_storage(None, data_dir=store)
    fp = code_fingerprint(get_family("sma_cross"))[:8]
    name = f"sma_cross-v1-spot-SYNUSDT-1h-c{fp}-wf1of2"
    study = optuna.load_study(study_name=name, storage=storage)
    assert len(study.trials) == 6


def test_sampler_and_batch_options_for_tune_and_worker(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--sampler fast-random --batch 16``: the trials are the sampler's draws; a worker
    joining with its own sampler adds its trials to the same journal, numbered after them."""
    from trading_pipeline.discovery.batch import draw

    argv = ["tune", "--strategy", "sma_cross", "--symbol", "SYNUSDT", "--interval", "1h"]
    argv += ["--data-dir", str(store), "--trials", "20", "--folds", "2", "--seed", "4"]
    assert cli_main([*argv, "--sampler", "fast-random", "--batch", "16", "--json"]) == 0
    group = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["study"]
    url = f"journal:{store / 'optuna' / 'studies.log'}"
    worker = ["tune-worker", "--study", group, "--storage", url, "--trials", "12"]
    worker += ["--symbol", "SYNUSDT", "--interval", "1h", "--data-dir", str(store)]
    assert cli_main([*worker, "--sampler", "random", "--batch", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 24
    family = get_family("sma_cross")
    study = optuna.load_study(
        study_name=f"{group}-wf2of2", storage=open_storage(url, data_dir=store)
    )
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(32))
    want = [draw(family.space, 4 + 1, n) for n in range(20)]  # fold 2 draws from seed + 1
    assert [family.validate(t.params) for t in trials[:20]] == want


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "nope", "--symbol", "SYNUSDT", "--interval", "1h"], "unknown strategy"),
        (["--strategy", "sma_cross", "--symbol", "NOPE", "--interval", "1h"], "no history"),
        (
            ["--strategy", "sma_cross", "--symbol", "SYNUSDT", "--interval", "1h", "--folds", "0"],
            "folds",
        ),
        (
            [
                "--strategy",
                "sma_cross",
                "--symbol",
                "SYNUSDT",
                "--interval",
                "1h",
                "--storage",
                "mysql://x",
            ],
            "unsupported study storage",
        ),
        (
            [*SMA_ARGS, "--sampler", "grid"],
            "unknown sampler 'grid'",
        ),
        (
            [*SMA_ARGS, "--sampler", "random", "--batch", "-1"],
            "--batch must be >= 0",
        ),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(
    store: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    before = sorted(p for p in store.rglob("*"))
    code = cli_main(["tune", *extra, "--data-dir", str(store), "--trials", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert sorted(p for p in store.rglob("*")) == before


def test_worker_needs_an_existing_study(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"journal:{store / 'optuna' / 'other.log'}"
    argv = ["tune-worker", "--study", "sma_cross-v1-spot-SYNUSDT-1h", "--storage", url]
    argv += ["--symbol", "SYNUSDT", "--interval", "1h", "--data-dir", str(store), "--trials", "2"]
    assert cli_main(argv) == 2
    assert "no study" in capsys.readouterr().err


def test_provenance_prefers_the_manifest_checksums(store: Path) -> None:
    from trading_pipeline.discovery.report import provenance_from_file, provenance_from_store
    from trading_pipeline.history.manifest import Manifest, ManifestEntry

    history = store / "history"
    plain = provenance_from_store(history, market="spot", symbol="SYNUSDT", interval="1h")
    assert len(plain.checksums) == 6 and all(len(v) == 64 for v in plain.checksums.values())
    entries = [
        ManifestEntry(
            key=f"data/spot/monthly/klines/SYNUSDT/1h/SYNUSDT-1h-2020-0{m}.zip",
            market="spot",
            symbol="SYNUSDT",
            interval="1h",
            sha256=f"{m}" * 64,
        )
        for m in (1, 2)
    ] + [
        ManifestEntry(key="other", market="spot", symbol="ETHUSDT", interval="1h", sha256="e" * 64)
    ]
    Manifest(history / "manifest.json").update(entries)
    listed = provenance_from_store(history, market="spot", symbol="SYNUSDT", interval="1h")
    assert sorted(listed.checksums.values()) == ["1" * 64, "2" * 64]
    assert listed.digest != plain.digest
    one = next((history / "parquet").rglob("*.parquet"))
    assert list(provenance_from_file(one).checksums.values()) == [
        plain.checksums[str(one.relative_to(history))]
    ]


LEAKY = Path(__file__).parents[1] / "strategies" / "leaky_strategy.py"


def test_a_leaky_strategy_is_not_tuned_or_swept(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lookahead gate: tune and sweep refuse a leaky family with one line (exit 2) before
    any trial, writing nothing; fixed, the family is tuned and its clean verdict is cached per
    code fingerprint."""
    args = ["--strategy", "peek_next_close", "--strategy-file", str(LEAKY)]
    args += ["--symbol", "SYNUSDT", "--interval", "1h", "--data-dir", str(store)]
    assert cli_main(["tune", *args, "--trials", "3", "--folds", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "peek_next_close v1 is not tuned: its lookahead audit failed" in err[0]
    assert "lookahead in flags at bar" in err[0]
    assert not (store / "optuna").exists()  # no study was created
    assert not (store / "discovery").exists()  # a refusal writes nothing
    assert cli_main(["sweep", *args, "--grid", "lag=1:3"]) == 2
    assert "is not tuned" in capsys.readouterr().err
    fixed = store / "fixed.py"
    fixed.write_text(
        LEAKY.read_text().replace('shift(-int(params["lag"]))', 'shift(int(params["lag"]))')
    )
    ok = ["--strategy", "peek_next_close", "--strategy-file", str(fixed)]
    ok += ["--symbol", "SYNUSDT", "--interval", "1h", "--data-dir", str(store)]
    assert cli_main(["tune", *ok, "--trials", "3", "--folds", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["study"].startswith("peek_next_close-v1-spot-SYNUSDT-1h-c")  # a new study
    [audit] = list((store / "discovery" / "audits").glob("peek_next_close-*.json"))
    assert '"verdict": "clean"' in audit.read_text()  # cached for this version of the source
