"""Family (static: the registered families but the benchmark) × series (dynamic) partitions."""

from __future__ import annotations

import warnings

import dagster as dg

from trading_pipeline.defs.history.partitions import series_partitions
from trading_pipeline.discovery.matrix import BENCHMARK
from trading_pipeline.strategies.registry import FAMILIES

TUNED_FAMILIES = sorted(name for name in FAMILIES if name != BENCHMARK)

family_partitions = dg.StaticPartitionsDefinition(TUNED_FAMILIES)
family_series = dg.MultiPartitionsDefinition(
    {"family": family_partitions, "series": series_partitions}
)

# a family × series partition reads every month of its series (klines, regime labels); the
# mapping is "beta" in Dagster 1.13: chosen knowingly, so its warning is not printed at import
# (it reached `make main`'s users before any output of ours)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*MultiPartitionMapping.*")
    SERIES_OF_KLINES = dg.MultiPartitionMapping(
        {"series": dg.DimensionPartitionMapping("series", dg.IdentityPartitionMapping())}
    )


def family_series_key(family: str, series: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"family": family, "series": series})


def split_family_series(key: str) -> tuple[str, str]:
    """``"sma_cross|spot-BTCUSDT-1h"`` → (``sma_cross``, ``spot-BTCUSDT-1h``)."""
    dims = family_series.get_partition_key_from_str(key).keys_by_dimension
    return dims["family"], dims["series"]
