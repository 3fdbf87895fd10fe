"""Discovery's lineage on the bots' assignments: which ranked studies and which selector model
stand behind what each bot is told to run.

``top_strategies.json`` (written by discovery's ``top_strategies`` step) ranks every usable
study with its series, parameters, MLflow run and Dagster partition; the selector's champion is
the model version the decisions come from. :func:`with_discovery_lineage` copies, for each
candidate assignment, the ranked studies of its family on its symbols and interval into its
lineage, so an assignment file leads back to the discovery runs it rests on. Lineage is not part
of an assignment's fingerprint: nothing a bot does changes with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from trading_pipeline.bots.assignment import Assignment

STUDY_FIELDS = ("study", "series", "rank", "robust", "mlflow_run_id", "dagster_partition")


def _symbol_interval(series: str) -> tuple[str, str]:
    """``spot-BTCUSDT-1h`` → (``BTCUSDT``, ``1h``)."""
    parts = series.split("-")
    return (parts[1], parts[-1]) if len(parts) >= 3 else ("", "")


def ranked_studies(top: Mapping[str, Any] | None, assignment: Assignment) -> list[dict[str, Any]]:
    """The ranked studies of the assignment's family on its symbols at its interval."""
    if not top or assignment.is_cash:
        return []
    out = []
    for entry in top.get("ranked", []):
        symbol, interval = _symbol_interval(str(entry.get("series", "")))
        if (
            entry.get("strategy") == assignment.family
            and interval == assignment.interval
            and symbol in assignment.symbols
        ):
            out.append({k: entry.get(k) for k in STUDY_FIELDS})
    return out


def with_discovery_lineage(
    candidates: Sequence[Assignment],
    top: Mapping[str, Any] | None,
    *,
    champion_version: int | None,
) -> list[Assignment]:
    """The candidates with ``discovery_studies`` (their ranked studies), the top file's
    ``generated_at`` and the selector's ``champion_version`` in their lineage."""
    out = []
    for a in candidates:
        extra: dict[str, Any] = {"champion_version": champion_version}
        if top:
            extra["top_strategies_generated_at"] = top.get("generated_at")
            extra["discovery_studies"] = ranked_studies(top, a)
        out.append(replace(a, lineage={**dict(a.lineage), **extra}))
    return out
