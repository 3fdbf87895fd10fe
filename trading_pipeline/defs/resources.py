"""The code location's resources, built from the environment (``Settings.from_env``).

Resources are the only place in the Dagster layer that read the environment.
"""

from __future__ import annotations

import dagster as dg

from trading_pipeline.defs.history.store import HistoryStore
from trading_pipeline.defs.parquet_io import ParquetIOManager
from trading_pipeline.settings import Settings


@dg.definitions
def resources() -> dg.Definitions:
    settings = Settings.from_env()
    return dg.Definitions(
        resources={
            "history": HistoryStore.from_settings(settings),
            "parquet_io_manager": ParquetIOManager(base_dir=str(settings.data_dir / "tables")),
        }
    )
