"""Keep history current: last month once Binance publishes it, and the current month daily.

Binance builds each monthly zip on the first Monday of the next month (sometimes up to two weeks
later), so the monthly schedule runs on the 8th; daily zips appear about an hour after 00:00 UTC,
so the daily schedule runs at 03:00 UTC and fills the month of the day before.
Months still without their monthly zip are retried by the ``late_monthly_files`` sensor.
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import dagster as dg

from trading_pipeline.defs.history.jobs import history_job
from trading_pipeline.defs.history.partitions import (
    month_key,
    previous_month,
    series_month_key,
    series_partitions,
)

MONTHLY_CRON = "0 3 8 * *"
DAILY_CRON = "0 3 * * *"
NO_SERIES = "no series registered yet (the history_series sensor adds them from settings)"


def month_requests(
    series_keys: Sequence[str], month: str, run_key_prefix: str
) -> list[dg.RunRequest]:
    """One run per series for ``month`` (a ``YYYY-MM-01`` month partition key)."""
    return [
        dg.RunRequest(
            run_key=f"{run_key_prefix}|{key}|{month}",
            partition_key=series_month_key(key, month),
            tags={"trading_pipeline/trigger": run_key_prefix},
        )
        for key in sorted(series_keys)
    ]


def _scheduled_day(context: dg.ScheduleEvaluationContext) -> date:
    moment: datetime = context.scheduled_execution_time
    return moment.date()


@dg.schedule(
    cron_schedule=MONTHLY_CRON,
    job=history_job,
    execution_timezone="UTC",
    description="On the 8th: last month's monthly files for every series.",
)
def history_monthly_schedule(
    context: dg.ScheduleEvaluationContext,
) -> Sequence[dg.RunRequest] | dg.SkipReason:
    keys = context.instance.get_dynamic_partitions(series_partitions.name or "series")
    if not keys:
        return dg.SkipReason(NO_SERIES)
    month = month_key(previous_month(_scheduled_day(context)))
    return month_requests(keys, month, "monthly")


@dg.schedule(
    cron_schedule=DAILY_CRON,
    job=history_job,
    execution_timezone="UTC",
    description="Every day at 03:00 UTC: the month of yesterday, filled from daily files.",
)
def history_daily_schedule(
    context: dg.ScheduleEvaluationContext,
) -> Sequence[dg.RunRequest] | dg.SkipReason:
    keys = context.instance.get_dynamic_partitions(series_partitions.name or "series")
    if not keys:
        return dg.SkipReason(NO_SERIES)
    yesterday = _scheduled_day(context) - timedelta(days=1)
    return month_requests(keys, month_key(yesterday), f"daily-{yesterday.isoformat()}")
