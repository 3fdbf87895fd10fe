"""Where each bot's assignment came from, as links a person clicks in the UI.

Per bot: the family and parameters it runs, the selector model version and its training run
(MLflow), the decision it follows, the discovery run (MLflow) of the study it trades and that
study's ``strategy_results`` partition in Dagster (whose metadata lists the klines partitions
the study read, each with the sha256 of its Parquet file). The discovery run of a candidate is
read from the selector's training set (``training_set.json``: candidate → study partition →
MLflow run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from trading_pipeline.bots.assignment import Assignment
from trading_pipeline.defs.history.metadata import markdown_table
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.links import md_link

TRAINING_META = "training_set.json"  # selector.dataset.META_FILE (not imported: numpy, optuna)
STRATEGY_RESULTS = dg.AssetKey("strategy_results")
HEADER = ["bot", "family", "params", "model", "training run", "decision", "discovery run", "data"]


def discovery_runs(selector_dir: Path) -> dict[str, str]:
    """``strategy_results`` partition → MLflow run id, from the selector's training set."""
    path = selector_dir / TRAINING_META
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    runs = (meta.get("provenance") or {}).get("discovery_mlflow_runs") or {}
    return {str(k): str(v) for k, v in runs.items() if v}


def _study_partition(choice: str | None) -> str | None:
    """``sma_cross@spot-BTCUSDT-1h`` → ``sma_cross|spot-BTCUSDT-1h`` (the study's partition)."""
    if not choice or "@" not in choice:
        return None
    family, series = choice.split("@", 1)
    return f"{family}|{series}"


def bot_links(lake: DataLake, a: Assignment, runs: Mapping[str, str]) -> dict[str, Any]:
    """One bot's lineage: what it runs and the URL of everything it came from."""
    lin = a.lineage
    out: dict[str, Any] = {
        "family": a.family,
        "params": dict(a.params),
        "version": a.version,
        "source": lin.get("source"),
    }
    if lin.get("model_name") and lin.get("model_version") is not None:
        out["model"] = f"{lin['model_name']} v{lin['model_version']}"
        out["model_url"] = lake.model_link(str(lin["model_name"]), lin["model_version"])
    if lin.get("model_run_id"):
        out["training_run_url"] = lake.run_link(None, str(lin["model_run_id"]))
    if lin.get("decision_id") is not None:
        out["decision"] = (
            f"#{lin['decision_id']} {lin.get('choice', '')} at {lin.get('decided_at', '')}"
        )
    partition = _study_partition(lin.get("choice"))
    if partition is not None:
        out["study_partition"] = partition
        out["study_partition_url"] = lake.dagster_asset_link(STRATEGY_RESULTS, partition)
        if partition in runs:
            out["discovery_run_url"] = lake.run_link(None, runs[partition])
    if lin.get("dagster_run_id"):
        out["deployed_by_url"] = lake.dagster_run_link(str(lin["dagster_run_id"]))
    return out


def lineage_metadata(lake: DataLake, fleet: Mapping[str, Assignment]) -> dict[str, Any]:
    """``lineage`` (a Markdown table of links) and ``lineage_json`` (the same, per bot)."""
    runs = discovery_runs(lake.layout.selector_dir)
    per_bot = {bot: bot_links(lake, a, runs) for bot, a in sorted(fleet.items())}

    def link(d: Mapping[str, Any], text_key: str, url_key: str, text: str | None = None) -> str:
        if url_key not in d:
            return str(d.get(text_key) or "-")
        return md_link(text or str(d.get(text_key) or "open"), d[url_key])

    rows = [
        [
            bot,
            d["family"],
            json.dumps(d["params"], sort_keys=True, default=str),
            link(d, "model", "model_url"),
            link(d, "training_run", "training_run_url", "MLflow run"),
            d.get("decision") or d.get("source") or "-",
            link(d, "discovery_run", "discovery_run_url", "MLflow run"),
            link(d, "study_partition", "study_partition_url"),
        ]
        for bot, d in per_bot.items()
    ]
    return {
        "lineage": dg.MetadataValue.md(markdown_table(HEADER, rows)),
        "lineage_json": dg.MetadataValue.json(per_bot),
    }
