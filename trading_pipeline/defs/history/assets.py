"""The history chain as assets: verified raw zips → extracted CSVs → monthly Parquet klines.

Each asset is a thin loop over the run's partitions (one, or a whole range when a backfill runs
as a single run) calling the fetcher core, which writes the files. Each month gets its own
metadata (``add_month_metadata``), with a ``status`` saying what the run did to it: ``built``,
``unchanged`` (rebuilt to the same bytes), ``kept`` (no Binance Vision file: the file already in
the store, e.g. an import, is described, not rebuilt) or ``no data``. A single-run backfill
records a materialization for every month of its range (Dagster cannot leave some months of one
run out, dagster-io/dagster#17836), so that status is where a month says it was not built.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from trading_pipeline.defs.history.metadata import (
    BUILT,
    KEPT,
    NO_DATA,
    UNCHANGED,
    add_month_metadata,
    month_file_metadata,
)
from trading_pipeline.defs.history.partitions import series_month, split_key
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import table
from trading_pipeline.defs.versions import DATA, source_version
from trading_pipeline.history import fetch
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.history.layout import HistoryLayout
from trading_pipeline.history.manifest import Manifest

GROUP = "market_data"
KEY_PREFIX = ["history"]
BACKFILL = dg.BackfillPolicy.single_run()
Meta = dict[str, Any]  # one month's metadata (Dagster's raw metadata values)
OWNERS = [DATA]
_FETCH = "trading_pipeline.history.fetch"


class FetchConfig(dg.Config):
    """How the raw zips are fetched."""

    fill_daily: bool = Field(
        default=True,
        description="fill a month with no monthly file yet (the current one) from daily files",
    )
    force: bool = Field(
        default=False, description="download and rebuild even what is already up to date"
    )


def _label(key: str) -> str:
    series, year, month = split_key(key)
    return f"{series.key} {year:04d}-{month:02d}"


def _zips_month(m: fetch.MonthDownload) -> Meta:
    """One month's zips: where they came from, what changed, and each file's checksum."""
    return {
        "source": m.source,
        "files": len(m.files),
        "files_new": sum(f.status == "new" for f in m.files),
        "files_skipped": sum(f.status == "skipped" for f in m.files),
        "files_failed": len(m.failed),
        "checksums": table(
            [
                {
                    "file": f.key.rsplit("/", 1)[-1],
                    "sha256": f.sha256,
                    "bytes": f.size,
                    "status": f.status,
                }
                for f in m.files
            ],
            ["file", "sha256", "bytes", "status"],
            descriptions={
                "sha256": "SHA-256 of the zip, verified against Binance's .CHECKSUM",
                "status": "new (downloaded now), skipped (already verified) or failed",
            },
        ),
    }


@dg.asset(
    key_prefix=KEY_PREFIX,
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"python", "zip"},
    code_version=source_version(__name__, _FETCH, "trading_pipeline.history.download"),
    owners=OWNERS,
)
def raw_zips(
    context: dg.AssetExecutionContext,
    config: FetchConfig,
    lake: DataLake,
    history_source: HistorySource,
) -> dg.MaterializeResult:
    """Binance Vision kline zips of the month, each verified against its published SHA-256."""
    layout = lake.layout.history
    source = history_source
    keys = list(context.partition_keys)
    workers = max(1, min(source.concurrency, len(keys)))  # months in parallel …
    per_month = max(1, source.concurrency // workers)  # … and files within a month

    def one(key: str) -> fetch.MonthDownload:
        series, year, month = split_key(key)
        return fetch.download_month(
            series,
            year,
            month,
            layout=layout,
            vision_url=source.vision_url,
            listing_url=source.listing_url,
            fill_daily=config.fill_daily,
            force=config.force,
            concurrency=per_month,
        )

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        months = list(pool.map(one, keys))
    finally:  # an interrupt (Ctrl-C, SIGTERM) drops the months not started yet
        pool.shutdown(wait=True, cancel_futures=True)
    files = [f for m in months for f in m.files]
    failed = [f for f in files if f.status == "failed"]
    for f in failed:
        context.log.error(f"{f.key}: {f.error}")
    metadata: Meta = {
        "partitions": len(keys),
        "files_new": sum(f.status == "new" for f in files),
        "files_skipped": sum(f.status == "skipped" for f in files),
        "files_failed": len(failed),
        "months_without_files": sum(m.source == "none" for m in months),
    }
    add_month_metadata(context, {k: _zips_month(m) for k, m in zip(keys, months, strict=True)})
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} file(s) failed: "
            + "; ".join(f"{f.key}: {f.error}" for f in failed[:5]),
            metadata=metadata,
        )
    context.log.info(
        f"{len(keys)} month(s): {metadata['files_new']} new file(s), "
        f"{metadata['files_skipped']} up to date, {metadata['months_without_files']} without files"
    )
    return dg.MaterializeResult(metadata={"partitions": len(keys)})  # the rest is per month


@dg.asset(
    key_prefix=KEY_PREFIX,
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"python", "csv"},
    deps=[raw_zips],
    code_version=source_version(__name__, _FETCH),
    owners=OWNERS,
)
def kline_csv(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The CSV inside each verified zip, extracted next to the raw mirror."""
    layout = lake.layout.history
    per_month: dict[str, Meta] = {}
    for key in context.partition_keys:
        series, year, month = split_key(key)
        paths = fetch.extract_month(series, year, month, layout=layout)
        per_month[key] = {
            "csv_files": len(paths),
            "first": paths[0].name if paths else "",
            "status": "extracted" if paths else NO_DATA,
        }
    add_month_metadata(context, per_month)
    return dg.MaterializeResult(
        metadata={
            "partitions": len(per_month),
            "csv_dir": dg.MetadataValue.path(str(layout.csv_dir)),
        }
    )


@dg.asset(
    key_prefix=KEY_PREFIX,
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[kline_csv],
    code_version=source_version(__name__, _FETCH, "trading_pipeline.history.convert"),
    owners=OWNERS,
)
def klines(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Canonical klines, one Parquet file per series and month (Hive layout)."""
    layout = lake.layout.history
    per_month: dict[str, Meta] = {}
    owners: dict[str, str] = {}  # parquet path → who wrote it, read once if a month needs it
    for key in context.partition_keys:
        series, year, month = split_key(key)
        path = layout.parquet_path(series, year, month)
        if not fetch.source_keys(layout, series, year, month):
            if path.exists() and not owners:
                owners = _owners(layout)
            per_month[key] = _unbuilt_month(context, key, path, series.interval, owners)
            continue
        before = sha256_file(path) if path.exists() else None
        build = fetch.build_month_parquet(series, year, month, layout=layout)
        status = UNCHANGED if build.sha256 == before else BUILT
        per_month[key] = {
            **month_file_metadata(
                build.path, series.interval, status=status, source="binance vision"
            ),
            "duplicates_dropped": build.duplicates_dropped,
        }
    add_month_metadata(context, per_month)
    counts = Counter(str(m["status"]) for m in per_month.values())
    context.log.info(
        f"{len(per_month)} month(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )
    return dg.MaterializeResult(
        metadata={
            "partitions": len(per_month),
            "parquet_root": dg.MetadataValue.path(str(layout.parquet_dir)),
        }
    )


def _unbuilt_month(
    context: dg.AssetExecutionContext,
    key: str,
    path: Path,
    interval: str,
    owners: dict[str, str],
) -> Meta:
    """A month with no Binance Vision file: the file already in the store (an import) is
    kept and described as it is; with no file at all, the month says it holds no data."""
    if not path.exists():
        context.log.info(f"{_label(key)}: no file published, nothing to build")
        return {"status": NO_DATA, "rows": 0, "source": "none"}
    context.log.info(f"{_label(key)}: no Binance Vision file; the file in the store is kept")
    source = owners.get(path.as_posix(), "unknown")
    return month_file_metadata(path, interval, status=KEPT, source=source)


def _owners(layout: HistoryLayout) -> dict[str, str]:
    """Who wrote each Parquet file according to the manifest (``freqtrade:<file>``, …)."""
    return {
        (layout.root / e.parquet_path).as_posix(): e.source or e.kind or "unknown"
        for e in Manifest(layout.manifest_path).load().values()
        if e.parquet_path
    }
