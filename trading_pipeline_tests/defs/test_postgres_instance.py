"""Scale-out mode on the local PostgreSQL (skipped without it): the Dagster instance of
``deploy/dagster-postgres.yaml`` materializes a partitioned asset, runs a schedule tick and reads
the runs back; MLflow with a plain ``postgresql://`` URL registers a model."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import numpy as np
import psycopg
import pytest

from trading_pipeline.defs.history.assets import kline_csv, klines, raw_zips
from trading_pipeline.defs.history.checks import no_duplicate_bars, ohlc_consistent
from trading_pipeline.defs.history.partitions import series_month_key, series_partitions
from trading_pipeline.defs.history.schedules import history_monthly_schedule
from trading_pipeline_tests.defs.conftest import BTC, ETH, HistoryKit

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards."""
    name = f"tp_scaleout_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(postgres_url, autocommit=True)
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_instance(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    url = urlsplit(fresh_database)
    for name, value in (("HOST", url.hostname), ("PORT", str(url.port or 5432)),
                        ("USER", url.username), ("PASSWORD", url.password or ""),
                        ("DB", url.path.lstrip("/"))):  # fmt: skip
        monkeypatch.setenv(f"TP_DAGSTER_PG_{name}", value or "")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_dagster_instance_on_postgres_runs_assets_and_schedules(
    pg_instance: dg.DagsterInstance,
    fresh_database: str,
    make_store: Callable[..., HistoryKit],
) -> None:
    instance = pg_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    instance.add_dynamic_partitions(series_partitions.name or "series", [BTC.key, ETH.key])
    store = make_store()
    key = str(series_month_key(BTC.key, "2024-01-01"))
    result = dg.materialize(
        [raw_zips, kline_csv, klines, no_duplicate_bars, ohlc_consistent],
        partition_key=key,
        instance=instance,
        resources=store.resources,
    )
    assert result.success
    done = instance.get_materialized_partitions(dg.AssetKey(["history", "klines"]))
    assert key in done

    # a tick of the monthly schedule (on the 8th: last month for every series), then its run
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2024, 3, 8, 3, tzinfo=UTC)
    )
    requests = history_monthly_schedule(context)
    assert isinstance(requests, list)
    wanted = sorted(str(r.partition_key) for r in requests)
    assert wanted == sorted(str(series_month_key(s.key, "2024-02-01")) for s in (BTC, ETH))
    for request in requests:
        run = dg.materialize(
            [raw_zips, kline_csv, klines],
            instance=instance,
            partition_key=str(request.partition_key),
            resources=store.resources,
            tags=request.tags,
        )
        assert run.success

    # read back: three runs in the instance, and in PostgreSQL's own tables
    records = instance.get_run_records()
    assert len(records) == 3 and all(r.dagster_run.is_success for r in records)
    with psycopg.connect(fresh_database) as db:
        runs = db.execute("SELECT count(*) FROM runs").fetchone()
        events = db.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        ).fetchone()
    assert runs == (3,) and events is not None and events[0] >= 3


def test_mlflow_on_postgres_registers_a_model(fresh_database: str, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from trading_pipeline.selector.registry import MlflowRegistry

    assert fresh_database.startswith("postgresql://")  # the plain URL, no +driver
    registry = MlflowRegistry(fresh_database, "scale-out", artifact_root=tmp_path / "artifacts")
    x = np.random.default_rng(0).normal(size=(60, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    version = registry.register(model, name="tp-scaleout-selector", metrics={"accuracy": 1.0})
    assert version == 1
    with psycopg.connect(fresh_database) as db:
        row = db.execute(
            "SELECT name, version FROM model_versions WHERE name = 'tp-scaleout-selector'"
        ).fetchone()
    assert row == ("tp-scaleout-selector", 1)
