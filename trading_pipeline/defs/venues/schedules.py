"""Keep the venue candles current: the month of yesterday, every day."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from trading_pipeline.defs.venues.jobs import venue_candles_job
from trading_pipeline.defs.venues.partitions import VENUE_SERIES, venue_month_key

DAILY_CRON = "30 4 * * *"


@dg.schedule(
    cron_schedule=DAILY_CRON,
    job=venue_candles_job,
    execution_timezone="UTC",
    description="Every day at 04:30 UTC: the month of yesterday for every venue series.",
)
def venue_candles_daily_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """Yesterday's month: the month in progress grows, and on the 1st last month is completed."""
    yesterday: date = context.scheduled_execution_time.date() - timedelta(days=1)
    month = f"{yesterday.year:04d}-{yesterday.month:02d}-01"
    return [
        dg.RunRequest(
            run_key=f"venue-daily|{key}|{yesterday.isoformat()}",
            partition_key=venue_month_key(key, month),
            tags={"trading_pipeline/trigger": "venue-daily"},
        )
        for key in VENUE_SERIES
    ]
