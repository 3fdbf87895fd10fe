"""Sensors: register the configured series as partitions, and retry late monthly files."""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

import dagster as dg

from trading_pipeline.defs.history.jobs import history_job
from trading_pipeline.defs.history.partitions import (
    month_key,
    previous_month,
    series_month_key,
    series_partitions,
)
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.history.layout import Series
from trading_pipeline.history.manifest import Manifest, ManifestEntry
from trading_pipeline.history.vision import month_daily_prefix, monthly_key

FIRST_RETRY_DAY = 9  # the monthly schedule asks on the 8th; from the 9th a missing file is late
RETRY_EVERY_S = 6 * 3600


def utc_today() -> date:
    """Today in UTC (a module function so tests can pin the clock)."""
    return datetime.now(UTC).date()


def month_source(entries: Mapping[str, ManifestEntry], series: Series, month: date) -> str:
    """What the manifest holds for the month: "monthly", "daily" or "none"."""
    if monthly_key(series, month.year, month.month) in entries:
        return "monthly"
    prefix = month_daily_prefix(series, month.year, month.month)
    return "daily" if any(k.startswith(prefix) for k in entries) else "none"


def late_month_requests(
    series_keys: Sequence[str], entries: Mapping[str, ManifestEntry], today: date
) -> list[dg.RunRequest]:
    """Ask again for last month of each series whose monthly zip is not in the manifest yet.

    At most one request per series and day (the run key carries the date).
    """
    if today.day < FIRST_RETRY_DAY:
        return []
    month = previous_month(today)
    requests = []
    for key in sorted(series_keys):
        source = month_source(entries, Series.parse(key), month)
        if source == "monthly":
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"late-monthly|{key}|{month_key(month)}|{today.isoformat()}",
                partition_key=series_month_key(key, month_key(month)),
                tags={"trading_pipeline/trigger": "late-monthly", "history/source": source},
            )
        )
    return requests


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Adds the series in force as partitions: the configured universe (TP_UNIVERSE…) and "
        "every bot's (symbol, interval) from the fleet file (TP_FLEET_SERIES=off: universe only)."
    ),
)
def history_series(
    context: dg.SensorEvaluationContext, history_source: HistorySource
) -> dg.SensorResult | dg.SkipReason:
    known = set(context.instance.get_dynamic_partitions(series_partitions.name or "series"))
    new = [k for k in history_source.series_keys() if k not in known]
    if not new:
        return dg.SkipReason(f"all {len(known)} series in force are registered")
    return dg.SensorResult(dynamic_partitions_requests=[series_partitions.build_add_request(new)])


@dg.sensor(
    job=history_job,
    minimum_interval_seconds=RETRY_EVERY_S,
    description="From the 9th: re-asks last month while its monthly zip is still missing.",
)
def late_monthly_files(
    context: dg.SensorEvaluationContext, lake: DataLake
) -> dg.SensorResult | dg.SkipReason:
    keys = context.instance.get_dynamic_partitions(series_partitions.name or "series")
    today = utc_today()
    manifest = Manifest(lake.layout.history.manifest_path).load()
    requests = late_month_requests(keys, manifest, today)
    if not requests:
        return dg.SkipReason(f"no late monthly file on {today.isoformat()}")
    return dg.SensorResult(run_requests=requests)
