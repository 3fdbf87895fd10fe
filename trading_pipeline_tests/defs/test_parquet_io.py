"""The project's Parquet IO manager: Hive folders per partition, ranges read back as one frame."""

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from trading_pipeline.defs.history.partitions import series_month, series_month_key
from trading_pipeline.defs.parquet_io import ParquetIOManager
from trading_pipeline_tests.defs.conftest import BTC, ETH

pytestmark = pytest.mark.slow  # Dagster instance runs


@dg.asset(partitions_def=series_month, io_manager_key="parquet_io_manager", key_prefix=["t"])
def bars(context: dg.AssetExecutionContext) -> pl.DataFrame:
    dims = context.partition_key.keys_by_dimension
    return pl.DataFrame(
        {"series": [dims["series"]] * 3, "month": [dims["month"]] * 3, "x": [1, 2, 3]}
    )


@dg.asset(
    io_manager_key="parquet_io_manager",
    key_prefix=["t"],
    ins={"bars": dg.AssetIn(key=["t", "bars"], metadata={"allow_missing_partitions": True})},
)
def summary(bars: pl.DataFrame) -> pl.DataFrame:
    """Unpartitioned: loads every materialized partition of ``bars`` as one frame."""
    return bars.group_by("series").agg(pl.col("x").sum()).sort("series")


def test_partitions_land_in_hive_folders_and_load_back_together(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    io = ParquetIOManager(base_dir=str(tmp_path / "tables"))
    keys = [series_month_key(s.key, m) for s in (BTC, ETH) for m in ("2024-01-01", "2024-02-01")]
    for key in keys:
        result = dg.materialize(
            [bars], partition_key=str(key), instance=instance, resources={"parquet_io_manager": io}
        )
        assert result.success
    expected = tmp_path / "tables/t/bars/month=2024-02-01/series=spot-ETHUSDT-1h/data.parquet"
    assert pl.read_parquet(expected)["month"].unique().to_list() == ["2024-02-01"]
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "tables").rglob("*.parquet"))
    assert len(files) == 4 and not list((tmp_path / "tables").rglob("*.part"))
    # Hive layout: DuckDB and polars read the partition columns from the folder names.
    glob = str(tmp_path / "tables/t/bars/**/*.parquet")
    n = duckdb.sql(
        f"select count(distinct month) from read_parquet('{glob}', hive_partitioning=true) "
        "where series = 'spot-BTCUSDT-1h'"
    ).fetchall()
    assert n == [(2,)]

    downstream = dg.materialize(
        [bars, summary],
        selection=[summary],
        instance=instance,
        resources={"parquet_io_manager": io},
    )
    assert downstream.success
    out = pl.read_parquet(tmp_path / "tables/t/summary/data.parquet")
    assert out.to_dicts() == [{"series": BTC.key, "x": 12}, {"series": ETH.key, "x": 12}]


def test_time_partitions_use_a_partition_folder(tmp_path: Path) -> None:
    month_only = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
    io = ParquetIOManager(base_dir=str(tmp_path))
    path = io.path_for(dg.AssetKey(["f", "g"]), month_only, "2024-03-01")
    assert path == tmp_path / "f/g/partition=2024-03-01/data.parquet"
