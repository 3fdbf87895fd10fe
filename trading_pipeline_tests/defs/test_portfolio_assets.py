"""A portfolio family through the Dagster chain, in-process: two generated coins' klines → the
family tuned on their universe in a real Optuna journal → its row in the performance matrix."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.discovery.assets import performance_matrix, top_strategies
from trading_pipeline.defs.discovery.portfolio import portfolio_results
from trading_pipeline.discovery.matrix import ALL, BENCHMARK
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import PORTFOLIO_FAMILIES
from trading_pipeline_tests.defs.conftest import BTC, ETH, discovery_resources, ops_config
from trading_pipeline_tests.defs.readable import problems
from trading_pipeline_tests.fakes.bars import START_2021, make_bars
from trading_pipeline_tests.fakes.store import write_store

pytestmark = pytest.mark.slow  # Dagster instance runs, Optuna studies

FAMILY = "xs_momentum"
UNIVERSE = "universe-BTC+ETH-1h"
TINY = {"trials": 4, "folds": 2, "seed": 3, "universe": ["BTCUSDT", "ETHUSDT"]}


def test_a_portfolio_family_is_ranked_in_the_matrix(
    instance: dg.DagsterInstance, data_dir: Path
) -> None:
    assert FAMILY in PORTFOLIO_FAMILIES
    write_store(
        data_dir / "history", ETH, make_bars(2500, seed=8, trend="walk_traded", start=START_2021)
    )
    resources = discovery_resources(data_dir)
    result = dg.materialize(
        [portfolio_results],
        partition_key=FAMILY,
        instance=instance,
        resources=resources,
        run_config=ops_config(portfolio_results=TINY),
    )
    assert result.success
    meta = result.asset_materializations_for_node("portfolio_results")[0].metadata
    assert meta["universe"].value == UNIVERSE
    assert meta["coins"].value == f"{BTC.key}, {ETH.key}"
    assert str(meta["study"].value).startswith(f"{FAMILY}-v")
    assert UNIVERSE in str(meta["study"].value)
    assert meta["n_trials"].value == TINY["trials"] * TINY["folds"]
    assert 0.0 <= meta["dsr_probability"].value <= 1.0
    summary = meta["summary"]
    assert isinstance(summary, dg.TableMetadataValue)
    assert [c.name for c in summary.schema.columns] == ["metric", "strategy", "equal_weight_basket"]
    assert summary.records[0].data["strategy"] == meta["oos_sharpe"].value
    assert problems(meta) == []

    matrix_run = dg.materialize(
        [performance_matrix, top_strategies],
        instance=instance,
        resources=resources,
        run_config=ops_config(top_strategies={"min_trades": 0}),
    )
    assert matrix_run.success
    matrix = pl.read_parquet(DataLayout.under(data_dir).performance_matrix_path)
    rows = matrix.filter((pl.col("strategy") == FAMILY) & (pl.col("series") == UNIVERSE))
    assert rows.height >= 1 and ALL in set(rows["regime"])
    whole = rows.filter(pl.col("regime") == ALL)
    assert whole["sharpe"].item() == pytest.approx(meta["oos_sharpe"].value, rel=1e-2)
    # the universe's own benchmark row sits beside it
    assert matrix.filter((pl.col("strategy") == BENCHMARK) & (pl.col("series") == UNIVERSE)).height
    mmeta = matrix_run.asset_materializations_for_node("performance_matrix")[0].metadata
    assert UNIVERSE in str(mmeta["series"].value)
    # ranked beside the single-series families, deflated over every trial on the universe
    doc = json.loads(DataLayout.under(data_dir).top_strategies_path.read_text())
    (row,) = [r for r in doc["ranked"] if r["series"] == UNIVERSE]
    assert row["strategy"] == FAMILY and row["dagster_partition"] == FAMILY
    assert row["n_trials"] == TINY["trials"] * TINY["folds"]
