"""Discovery's lineage on assignments: the ranked studies of the assignment's family on its
symbols and interval, the top file's time and the champion version; cash gets none."""

from __future__ import annotations

from trading_pipeline.bots.assignment import default_assignment
from trading_pipeline.bots.lineage import with_discovery_lineage

TOP = {
    "generated_at": "2026-12-01T00:00:00+00:00",
    "ranked": [
        {"strategy": "sma_cross", "series": "spot-BTCUSDT-1h", "study": "s-btc", "rank": 1,
         "robust": True, "mlflow_run_id": "r1", "dagster_partition": "sma_cross|spot-BTCUSDT-1h"},
        {"strategy": "sma_cross", "series": "spot-BTCUSDT-5m", "study": "s-5m", "rank": 2,
         "robust": False, "mlflow_run_id": "r2", "dagster_partition": "x"},
        {"strategy": "macd", "series": "spot-ETHUSDT-1h", "study": "m-eth", "rank": 3,
         "robust": False, "mlflow_run_id": "r3", "dagster_partition": "y"},
    ],
}  # fmt: skip


def test_each_assignment_names_its_ranked_studies_and_the_champion() -> None:
    bot1 = default_assignment("bot1")  # sma_cross on BTC, ETH, BNB at 1h
    assert bot1.family == "sma_cross" and "BTCUSDT" in bot1.symbols
    cash = default_assignment("bot4")
    assert cash.is_cash
    out = with_discovery_lineage([bot1, cash], TOP, champion_version=7)
    studies = out[0].lineage["discovery_studies"]
    assert [s["study"] for s in studies] == ["s-btc"]
    assert studies[0]["mlflow_run_id"] == "r1" and studies[0]["rank"] == 1
    assert out[0].lineage["champion_version"] == 7
    assert out[0].lineage["top_strategies_generated_at"] == TOP["generated_at"]
    assert out[1].lineage["discovery_studies"] == []
    assert out[0].fingerprint == bot1.fingerprint  # lineage changes nothing a bot does
    bare = with_discovery_lineage([bot1], None, champion_version=None)[0]
    assert "discovery_studies" not in bare.lineage and bare.lineage["champion_version"] is None
