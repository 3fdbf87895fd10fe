"""Months written outside a Dagster run, recorded in the instance as what they are.

``trading-pipeline import freqtrade`` and ``trading-pipeline venue fetch`` write months of the
store without any run. So that the Partitions view tells the truth, each month they wrote is
reported to the instance of ``DAGSTER_HOME`` as a runless materialization of its partition
(``history/klines`` for Binance markets, ``venues/venue_candles`` for the venue series), with
the metadata a run writes for that month, and, for klines, the four checks' results for it. A
series the dynamic ``series`` partitions do not hold yet is added first. Months outside the
assets' partitions (a venue series the assets do not keep, a month before their first) are
left out and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.definitions.partitions.utils.multi import get_tags_from_multi_partition_key

from trading_pipeline.defs.history.assets import klines
from trading_pipeline.defs.history.checks import (
    MONTH_CHECKS,
    latest_materialization,
    month_evaluation,
)
from trading_pipeline.defs.history.metadata import IMPORTED, month_file_metadata
from trading_pipeline.defs.history.partitions import FIRST_MONTH, series_partitions
from trading_pipeline.defs.venues.assets import venue_candles, venue_month_metadata
from trading_pipeline.defs.venues.partitions import FIRST_MONTH as VENUE_FIRST_MONTH
from trading_pipeline.defs.venues.partitions import VENUE_SERIES
from trading_pipeline.history.importer import ImportSummary
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.market.schema import MARKETS
from trading_pipeline.venues.ohlcv import VenueFetchSummary

SERIES_PARTITIONS = series_partitions.name or "series"


@dataclass
class Reported:
    """What was recorded: materializations and check results, and months left out (why)."""

    materializations: int = 0
    check_results: int = 0
    left_out: int = 0

    def line(self, home: Path) -> str:
        out = (
            f"recorded {self.materializations} month(s) as materializations "
            f"({self.check_results} check results) in the Dagster instance at {home}"
        )
        if self.left_out:
            out += f"; {self.left_out} month(s) outside the assets' partitions left out"
        return out


@contextmanager
def open_instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    """The instance kept in ``dagster_home`` (its ``dagster.yaml``, else the defaults)."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        yield instance


def _partition(series_key: str, period: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"series": series_key, "month": f"{period[:7]}-01"})


def _ensure_series(instance: dg.DagsterInstance, keys: set[str]) -> None:
    missing = [k for k in sorted(keys) if not instance.has_dynamic_partition(SERIES_PARTITIONS, k)]
    if missing:
        instance.add_dynamic_partitions(SERIES_PARTITIONS, missing)


def report_klines_month(
    instance: dg.DagsterInstance, layout: HistoryLayout, series: Series, period: str, source: str
) -> int:
    """One month of klines written outside a run: its materialization, then its checks.
    Returns the number of check results recorded."""
    year, month = (int(x) for x in period[:7].split("-"))
    path = layout.parquet_path(series, year, month)
    key = _partition(series.key, period)
    metadata = month_file_metadata(path, series.interval, status=IMPORTED, source=source)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=klines.key,
            partition=key,
            metadata=metadata,
            tags=dict(get_tags_from_multi_partition_key(key)),
        )
    )
    target = latest_materialization(instance, klines.key, key)
    frame = pl.read_parquet(path)
    for check in MONTH_CHECKS:
        found = check.finder(frame, series.interval)
        instance.report_runless_asset_event(month_evaluation(check, key, found, target))
    return len(MONTH_CHECKS)


def report_import(
    summary: ImportSummary, *, layout: HistoryLayout, instance: dg.DagsterInstance
) -> Reported:
    """The months ``import freqtrade`` wrote: Binance markets as ``history/klines`` months,
    another exchange's spot candles as ``venues/venue_candles`` months when the assets keep
    that series."""
    done = Reported()
    written = [(Series.parse(f.series), f) for f in summary.files if f.months_written]
    _ensure_series(instance, {s.key for s, _ in written if s.market in MARKETS})
    for series, f in written:
        source = f"freqtrade:{f.path.name}"
        for period in f.months_written:
            if series.market in MARKETS and f"{period}-01" >= FIRST_MONTH:
                done.check_results += report_klines_month(instance, layout, series, period, source)
                done.materializations += 1
            elif series.key in VENUE_SERIES and f"{period}-01" >= VENUE_FIRST_MONTH:
                year, month = (int(x) for x in period.split("-"))
                path = layout.parquet_path(series, year, month)
                metadata = month_file_metadata(
                    path, series.interval, status=IMPORTED, source=source
                )
                _report_venue(instance, series.key, period, metadata)
                done.materializations += 1
            else:
                done.left_out += 1
    return done


def report_venue_fetch(summary: VenueFetchSummary, *, instance: dg.DagsterInstance) -> Reported:
    """The months ``venue fetch`` wrote (status ``written``) as ``venues/venue_candles``
    months, with the metadata the asset writes for them."""
    done = Reported()
    for m in summary.months:
        if m.status != "written":
            continue
        if summary.series not in VENUE_SERIES or f"{m.period}-01" < VENUE_FIRST_MONTH:
            done.left_out += 1
            continue
        metadata = {**venue_month_metadata(m), "source": "trading-pipeline venue fetch"}
        _report_venue(instance, summary.series, m.period, metadata)
        done.materializations += 1
    return done


def _report_venue(
    instance: dg.DagsterInstance, series_key: str, period: str, metadata: dict[str, object]
) -> None:
    key = _partition(series_key, period)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=venue_candles.key,
            partition=key,
            metadata=metadata,  # type: ignore[arg-type]
            tags=dict(get_tags_from_multi_partition_key(key)),
        )
    )
