"""The history chain as assets: verified raw zips → extracted CSVs → monthly Parquet klines.

Each asset is a thin loop over the run's partitions (one, or a whole range when a backfill runs
as a single run) calling the fetcher core, which writes the files; the asset returns metadata.
"""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import polars as pl

from trading_pipeline.defs.history.metadata import frame_preview, markdown_table
from trading_pipeline.defs.history.partitions import series_month, split_key
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.history import fetch

GROUP = "market_data"
KEY_PREFIX = ["history"]
BACKFILL = dg.BackfillPolicy.single_run()
PREVIEW_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "trades")


class FetchConfig(dg.Config):
    """How the raw zips are fetched."""

    fill_daily: bool = True  # months without a monthly file yet are filled from daily files
    force: bool = False  # download and rebuild even what is up to date


def _label(key: str) -> str:
    series, year, month = split_key(key)
    return f"{series.key} {year:04d}-{month:02d}"


@dg.asset(
    key_prefix=KEY_PREFIX,
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"python", "zip"},
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
    metadata: dict[str, dg.RawMetadataValue] = {
        "partitions": len(keys),
        "files_new": sum(f.status == "new" for f in files),
        "files_skipped": sum(f.status == "skipped" for f in files),
        "files_failed": len(failed),
        "months_without_files": sum(m.source == "none" for m in months),
        "sources": dg.MetadataValue.md(
            markdown_table(
                ["month", "source", "files", "new", "failed"],
                (
                    (
                        _label(k),
                        m.source,
                        len(m.files),
                        sum(f.status == "new" for f in m.files),
                        len(m.failed),
                    )
                    for k, m in zip(keys, months, strict=True)
                ),
            )
        ),
        "checksums": dg.MetadataValue.md(
            markdown_table(
                ["file", "sha256", "bytes", "status"],
                ((f.key.rsplit("/", 1)[-1], f.sha256, f.size, f.status) for f in files),
            )
        ),
    }
    if len(months) == 1:
        metadata["source"] = months[0].source
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} file(s) failed: "
            + "; ".join(f"{f.key}: {f.error}" for f in failed[:5]),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key_prefix=KEY_PREFIX,
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"python", "csv"},
    deps=[raw_zips],
)
def kline_csv(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The CSV inside each verified zip, extracted next to the raw mirror."""
    layout = lake.layout.history
    rows = []
    for key in context.partition_keys:
        series, year, month = split_key(key)
        paths = fetch.extract_month(series, year, month, layout=layout)
        rows.append((_label(key), len(paths), paths[0].name if paths else ""))
    return dg.MaterializeResult(
        metadata={
            "partitions": len(rows),
            "csv_files": sum(r[1] for r in rows),
            "csv_dir": dg.MetadataValue.path(str(layout.csv_dir)),
            "months": dg.MetadataValue.md(markdown_table(["month", "csv files", "first"], rows)),
        }
    )


@dg.asset(
    key_prefix=KEY_PREFIX,
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[kline_csv],
)
def klines(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Canonical klines, one Parquet file per series and month (Hive layout)."""
    layout = lake.layout.history
    builds: list[tuple[str, fetch.MonthBuild | None]] = []
    for key in context.partition_keys:
        series, year, month = split_key(key)
        if not fetch.source_keys(layout, series, year, month):
            context.log.info(f"{_label(key)}: no file published, nothing to build")
            builds.append((key, None))
            continue
        builds.append((key, fetch.build_month_parquet(series, year, month, layout=layout)))
    built = [b for _, b in builds if b is not None]
    metadata: dict[str, dg.RawMetadataValue] = {
        "partitions": len(builds),
        "rows": sum(b.rows for b in built),
        "gaps": sum(b.gaps for b in built),
        "missing_bars": sum(b.missing_bars for b in built),
        "duplicates_dropped": sum(b.duplicates_dropped for b in built),
        "months_without_data": len(builds) - len(built),
        "parquet_root": dg.MetadataValue.path(str(layout.parquet_dir)),
    }
    if built:
        first = min(b.first_open_time for b in built if b.first_open_time is not None)
        last = max(b.last_open_time for b in built if b.last_open_time is not None)
        metadata["first_bar"] = dg.MetadataValue.timestamp(first)
        metadata["last_bar"] = dg.MetadataValue.timestamp(last)
    metadata["months"] = dg.MetadataValue.md(
        markdown_table(
            ["month", "rows", "first bar", "last bar", "gaps", "sha256"],
            (
                (_label(k), b.rows, b.first_open_time, b.last_open_time, b.gaps, b.sha256[:16])
                if b is not None
                else (_label(k), 0, None, None, None, "no file published")
                for k, b in builds
            ),
        )
    )
    if len(built) == 1 and len(builds) == 1:
        only = built[0]
        metadata["parquet_path"] = dg.MetadataValue.path(str(only.path))
        metadata["sha256"] = only.sha256
        frame = pl.read_parquet(only.path)
        metadata["preview"] = dg.MetadataValue.md(frame_preview(frame, 5, PREVIEW_COLUMNS))
    return dg.MaterializeResult(metadata=metadata)
