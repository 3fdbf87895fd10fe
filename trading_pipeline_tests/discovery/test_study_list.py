"""``studies list`` / ``studies show``: the storage's groups, for people, labelled in-sample."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from trading_pipeline.cli import main
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.study_list import list_groups, show_group, split_fold
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import make_bars

pytestmark = pytest.mark.slow  # tunes two small studies into a journal file


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("optuna") / "studies.log"
    url = f"journal:{path}"
    storage = open_storage(url, data_dir=path.parent)
    bars = make_bars(3000, seed=11)
    for name, trials in (("sma_cross", 6), ("momentum", 4)):
        family = get_family(name)
        spec = make_spec(
            bars, family, series="spot-SYNUSDT-1h", interval="1h", walk=WalkForward(folds=2)
        )
        tune(bars, family, spec=spec, storage=storage, n_trials=trials, seed=1)
    return url


def test_split_fold_names() -> None:
    assert split_fold("sma_cross-v1-spot-BTCUSDT-1h-cab12cd34-wf2of4") == (
        "sma_cross-v1-spot-BTCUSDT-1h-cab12cd34",
        2,
        4,
    )
    assert split_fold("someone-elses-study") is None and split_fold("x-wfAof4") is None


def test_list_groups_counts_folds_and_trials(journal: str) -> None:
    groups = {g.family: g for g in list_groups(open_storage(journal, data_dir="."))}
    assert set(groups) == {"sma_cross", "momentum"}
    sma = groups["sma_cross"]
    assert (sma.folds, sma.studies, sma.trials) == (2, 2, 12)
    assert sma.series == "spot-SYNUSDT-1h" and sma.fee is not None and sma.fee > 0
    # each fold's best equals what Optuna itself holds for that study
    for k, best in enumerate(sma.best_in_sample, start=1):
        study = optuna.load_study(
            study_name=f"{sma.group}-wf{k}of2", storage=journal_storage(journal)
        )
        assert best == pytest.approx(study.best_value)


def journal_storage(url: str) -> optuna.storages.BaseStorage:
    return open_storage(url, data_dir=".", create=False)


def test_show_group_lists_the_best_trials_and_windows(journal: str) -> None:
    storage = journal_storage(journal)
    group = next(g.group for g in list_groups(storage) if g.family == "momentum")
    folds = show_group(storage, group, top=3)
    assert [f.fold for f in folds] == [1, 2]
    for f in folds:
        assert f.trials == 4 and len(f.top) == 3
        values = [t["in_sample_objective"] for t in f.top]
        assert values == sorted(values, reverse=True)
        assert f.train is not None and f.test is not None and f.train[1] <= f.test[0]
    assert folds[0].test[1] <= folds[1].test[0]  # type: ignore[index]
    with pytest.raises(UserInputError, match="no study group 'momentum-v9'"):
        show_group(storage, "momentum-v9")


def test_studies_cli_prints_tables_and_json(
    journal: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["studies", "list", "--storage", journal]) == 0
    out = capsys.readouterr().out
    assert "sma_cross" in out and "momentum" in out and "in-sample" in out
    assert main(["studies", "list", "--storage", journal, "--family", "momentum", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [g["family"] for g in doc["groups"]] == ["momentum"]
    group = doc["groups"][0]["group"]
    assert main(["studies", "show", group, "--storage", journal, "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "fold 1: 4/4 trials complete" in out and "in-sample" in out
    assert main(["studies", "show", "nope", "--storage", journal]) == 2
    assert capsys.readouterr().err.startswith("error: no study group 'nope'")


def test_a_missing_storage_file_is_an_error_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.log"
    assert main(["studies", "list", "--storage", f"journal:{missing}"]) == 2
    assert capsys.readouterr().err.startswith("error:") and not missing.exists()


def test_dashboard_serves_the_studies_read_only(journal: str) -> None:
    import threading

    import httpx

    from trading_pipeline.discovery.dashboard import make_dashboard_server

    server = make_dashboard_server(journal_storage(journal), port=0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        listed = httpx.get(f"{base}/api/studies", timeout=30).json()["study_summaries"]
        names = {s["study_name"] for s in listed}
        groups = list_groups(journal_storage(journal))
        assert names == {f"{g.group}-wf{k}of{g.folds}" for g in groups for k in (1, 2)}
        assert httpx.get(f"{base}/dashboard", timeout=30).status_code == 200
        study_id = listed[0]["study_id"]
        refused = httpx.delete(f"{base}/api/studies/{study_id}", timeout=30)
        assert refused.status_code == 403 and "read-only" in refused.text
        after = httpx.get(f"{base}/api/studies", timeout=30).json()["study_summaries"]
        assert len(after) == len(listed)  # nothing was deleted
    finally:
        server.shutdown()
        server.server_close()
