"""The main job's history stage: a fresh data dir, a local mirror, a persistent instance."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.chain import Chain
from trading_pipeline.defs.history.partitions import month_key, previous_month, series_month_key
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.manifest import Manifest
from trading_pipeline.history.mirror import running_mirror
from trading_pipeline.history.vision import monthly_key
from trading_pipeline.settings import DEFAULT_SYMBOLS
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_days

pytestmark = pytest.mark.slow  # Dagster instance runs

KLINES = dg.AssetKey(["history", "klines"])


@pytest.fixture
def today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture
def mirror_url(tmp_path: Path, today: date) -> Iterator[str]:
    """Two published months before the current one, and the current month's daily files."""
    last, before = previous_month(today), previous_month(previous_month(today))
    days = month_days(today.year, today.month, until=today - timedelta(days=1))
    days = [d for d in days if d.month == today.month]
    root = tmp_path / "vision"
    for seed, symbol in enumerate(DEFAULT_SYMBOLS):
        months = [(before.year, before.month), (last.year, last.month)]
        make_vision_tree(root, Series("spot", symbol, "1h"), months=months, days=days, seed=seed)
    with running_mirror(root) as server:
        yield server.url


def test_main_job_materializes_the_default_universe_from_a_fresh_data_dir(
    tmp_path: Path, mirror_url: str, today: date, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = previous_month(previous_month(today))
    data = tmp_path / "data"
    for name in ("TP_UNIVERSE", "TP_HISTORY_DIR", "TP_MARKET", "TP_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TP_DATA_DIR", str(data))
    monkeypatch.setenv("TP_VISION_URL", mirror_url)
    monkeypatch.setenv("TP_VISION_LISTING_URL", mirror_url)
    monkeypatch.setenv("TP_START", start.isoformat())
    assert not data.exists()

    lines: list[str] = []
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        chain = Chain(instance, today=today, echo=lines.append)
        report = chain.run(["history"])
        assert report.series == [f"spot-{s}-1h" for s in DEFAULT_SYMBOLS]
        assert not report.failures, lines
        records = instance.get_run_records()
        assert len(records) == len(DEFAULT_SYMBOLS)  # one run per series, not per month
        assert {r.dagster_run.tags.get("trading_pipeline/stage") for r in records} == {"history"}
        assert sum(line.startswith("  history spot-") for line in lines) == len(DEFAULT_SYMBOLS)

        months = [start, previous_month(today)] + ([today] if today.day > 1 else [])
        layout = HistoryLayout(data / "history")
        expected_keys = set()
        for symbol in DEFAULT_SYMBOLS:
            series = Series("spot", symbol, "1h")
            for m in months:
                expected_keys.add(str(series_month_key(series.key, month_key(m))))
                frame = pl.read_parquet(layout.parquet_path(series, m.year, m.month))
                bars = (today.day - 1) * 24 if m == today else _days(m) * 24
                assert frame.height == bars
            assert Manifest(layout.manifest_path).get(monthly_key(series, start.year, start.month))
        assert instance.get_materialized_partitions(KLINES) == expected_keys
        evaluations = [
            e.dagster_event.asset_check_evaluation_data
            for r in records
            for e in instance.all_logs(
                r.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if e.dagster_event
        ]
        per_month = [ev for ev in evaluations if ev.partition is not None]  # + one per range
        assert len(per_month) == 4 * len(expected_keys)  # every check, for every month
        assert {ev.partition for ev in per_month} == expected_keys
        assert all(ev.passed for ev in evaluations if ev.blocking)


def _days(first: date) -> int:
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (nxt - first).days
