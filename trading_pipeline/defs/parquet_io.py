"""A Parquet IO manager for polars dataframe assets, Hive-style (``…/month=…/series=…/``).

The published dagster-polars breaks on polars 2 (``scan_parquet(rechunk=)``), so the project owns
this one. Partitioned outputs go to one ``data.parquet`` per partition; an input spanning several
partitions is read back as one frame (an input with ``allow_missing_partitions`` metadata skips
partitions not materialized yet; otherwise they are an error).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from trading_pipeline.fsutil import atomic_path

FILE_NAME = "data.parquet"


def _hive_parts(partitions_def: dg.PartitionsDefinition | None, key: str) -> list[str]:
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        dims = partitions_def.get_partition_key_from_str(key).keys_by_dimension
        return [f"{name}={dims[name]}" for name in sorted(dims)]
    return [f"partition={key}"]


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores each polars output as ``base_dir/<asset key>/<dim=value…>/data.parquet``."""

    base_dir: str = Field(description="root of the tables (<data_dir>/tables)")

    def path_for(
        self,
        asset_key: dg.AssetKey,
        partitions_def: dg.PartitionsDefinition | None = None,
        partition_key: str | None = None,
    ) -> Path:
        folder = Path(self.base_dir).joinpath(*asset_key.path)
        if partition_key is not None:
            folder = folder.joinpath(*_hive_parts(partitions_def, partition_key))
        return folder / FILE_NAME

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"ParquetIOManager stores polars DataFrames, got {type(obj).__name__}")
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            raise ValueError(
                "ParquetIOManager stores one partition per output; this run covers "
                f"{len(context.asset_partition_keys)}: return MaterializeResult instead"
            )
        if context.has_asset_partitions:
            path = self.path_for(
                context.asset_key, context.asset_partitions_def, context.asset_partition_key
            )
        else:
            path = self.path_for(context.asset_key)
        with atomic_path(path) as tmp:
            obj.write_parquet(tmp)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "rows": obj.height})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            return pl.read_parquet(self.path_for(asset_key))
        partitions_def = context.asset_partitions_def
        paths = [
            self.path_for(asset_key, partitions_def, key) for key in context.asset_partition_keys
        ]
        missing = [str(p) for p in paths if not p.exists()]
        if missing and (context.definition_metadata or {}).get("allow_missing_partitions"):
            paths = [p for p in paths if p.exists()]
        elif missing:
            raise FileNotFoundError(f"partitions not materialized: {', '.join(missing[:5])}")
        return pl.concat([pl.read_parquet(p) for p in paths], how="vertical")
