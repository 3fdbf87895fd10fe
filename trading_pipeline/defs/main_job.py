"""The main job: the default universe's history, materialized into the persistent instance.

``python -m trading_pipeline.defs.main_job`` (what ``make main`` runs) registers the configured
series as partitions and materializes ``history_job`` for each series over every month from
``TP_START`` to the current one, one run per series (a partition range, as a single-run backfill
would), in the instance of ``DAGSTER_HOME`` — so the runs and partitions show in the UI after.
``TP_VISION_URL`` / ``TP_VISION_LISTING_URL`` point it at a mirror.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from trading_pipeline.defs.history.jobs import HISTORY_JOB
from trading_pipeline.defs.history.partitions import (
    FIRST_MONTH,
    month_key,
    series_month_key,
    series_partitions,
)
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake


@dataclass(frozen=True)
class SeriesRun:
    series: str
    run_id: str
    success: bool
    first_month: str
    last_month: str


def _location() -> dg.Definitions:
    from trading_pipeline.definitions import defs

    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    return loaded


def run_main(
    instance: dg.DagsterInstance,
    *,
    source: HistorySource | None = None,
    lake: DataLake | None = None,
    today: date | None = None,
    echo: Callable[[str], None] = print,
) -> list[SeriesRun]:
    """Materialize the history of every configured series; one run per series."""
    location = _location()
    job = location.resolve_job_def(HISTORY_JOB)
    configured = location.resources or {}
    source = source or configured["history_source"]
    lake = lake or configured["lake"]
    assert isinstance(source, HistorySource) and isinstance(lake, DataLake)
    overrides = {"history_source": source, "lake": lake}
    name = series_partitions.name or "series"
    keys = source.series_keys()
    known = set(instance.get_dynamic_partitions(name))
    if missing := [k for k in keys if k not in known]:
        instance.add_dynamic_partitions(name, missing)
    today = today or datetime.now(UTC).date()
    first = max(source.start[:7] + "-01", FIRST_MONTH)
    last = month_key(today)
    echo(f"history: {len(keys)} series × {first[:7]}…{last[:7]} into {lake.layout.history_dir}")
    runs = []
    for key in keys:
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: str(series_month_key(key, first)),
            ASSET_PARTITION_RANGE_END_TAG: str(series_month_key(key, last)),
            "trading_pipeline/trigger": "main",
        }
        result = job.execute_in_process(
            instance=instance, tags=tags, resources=overrides, raise_on_error=False
        )
        runs.append(SeriesRun(key, result.run_id, result.success, first, last))
        echo(f"  {key}: {'ok' if result.success else 'FAILED'} (run {result.run_id})")
    return runs


def main() -> int:
    """Entry point: exit 0 when every series' run succeeded, 1 otherwise."""
    with dg.DagsterInstance.get() as instance:
        runs = run_main(instance)
    return 0 if all(r.success for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
