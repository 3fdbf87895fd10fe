"""Why a bot holds cash, in one line a person can check: what a replay or status says beside it.

A bot holds cash because the selector chose cash (its decision's reason), because nothing has
been tuned on its own series yet (``no tuned study for spot-SOLUSDT-5m …``: discovery has not
run on the bot's symbols at its interval), because the studies on its series exist but no
decision has given it one, or, for a two-venue bot, because no spread survives both venues'
costs out of sample (the arbitrage study's report) or no such study has run. Read-only: it
reads ``top_strategies.json`` and the arbitrage reports under the data dir, never creates them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trading_pipeline.bots.fleet_file import CASH, BotSpec
from trading_pipeline.settings import DataLayout

PAIR_FAMILY = "arbitrage"
SPEC_DEFAULT = "spec-default"


def _series(spec: BotSpec, market: str = "spot") -> list[str]:
    return [f"{market}-{s}-{spec.interval}" for s in spec.symbols if ":" not in s]


def tuned_series(top_strategies: Mapping[str, Any] | None, spec: BotSpec) -> list[str]:
    """The bot's own series some ranked study of one of its families was tuned on."""
    mine = set(_series(spec))
    rows = (top_strategies or {}).get("ranked") or []
    found = {
        str(r.get("series"))
        for r in rows
        if isinstance(r, Mapping) and r.get("series") in mine and r.get("strategy") in spec.families
    }
    return sorted(found)


def _span(keys: Sequence[str]) -> str:
    return ", ".join(keys) if len(keys) <= 3 else f"{keys[0]} … {keys[-1]} ({len(keys)} series)"


def arbitrage_reason(basis_dir: Path) -> str:
    """What the newest arbitrage study says (or that none ran)."""
    reports = sorted(basis_dir.glob("*.arbitrage.json"), key=lambda p: p.stat().st_mtime)
    if not reports:
        return (
            "arbitrage: no arbitrage study yet (materialize venues/venue_basis and "
            "arbitrage_study); holds cash until a spread survives both venues' costs"
        )
    try:
        report = json.loads(reports[-1].read_text())
        net = float(report["net_arb_pnl"])
        folds = len(report["folds"])
        in_cash = int(report["folds_in_cash"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"arbitrage: the study report {reports[-1].name} cannot be read"
    verdict = "no spread survives costs" if net <= 0 or in_cash == folds else "a spread survives"
    tail = "" if verdict.startswith("no") else "; no arbitrage assignment deployed yet"
    return (
        f"arbitrage: {verdict} ({reports[-1].name}: net arbitrage PnL {net:+.2f} out of "
        f"sample, {in_cash} of {folds} folds in cash){tail}"
    )


def cash_reason(
    spec: BotSpec, assignment: Any, *, top_strategies: Mapping[str, Any] | None, basis_dir: Path
) -> str | None:
    """Why ``spec``'s bot, running ``assignment``, holds cash (None: it runs a strategy)."""
    if assignment is not None and getattr(assignment, "family", CASH) != CASH:
        return None
    lineage = dict(getattr(assignment, "lineage", None) or {})
    if lineage.get("reason") and lineage.get("source") != SPEC_DEFAULT:
        return f"the selector chose cash: {lineage['reason']}"
    if PAIR_FAMILY in spec.families:
        return arbitrage_reason(basis_dir)
    mine = _series(spec)
    tuned = tuned_series(top_strategies, spec)
    if not tuned:
        return f"no tuned study for {_span(mine)} ({', '.join(spec.families)})"
    return (
        f"tuned on {len(tuned)} of {len(mine)} of its series, but no selector decision has "
        "given it a strategy yet (its spec default is cash)"
    )


def cash_reasons(
    layout: DataLayout, bots: Sequence[BotSpec], assignments: Mapping[str, Any]
) -> dict[str, str]:
    """Bot → why it holds cash, for the bots of ``bots`` whose assignment (or spec default,
    when none is deployed) is cash."""
    path = layout.top_strategies_path
    try:
        top = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        top = None
    out = {}
    for spec in bots:
        a = assignments.get(spec.name)
        if a is None and spec.default_family != CASH:
            continue
        why = cash_reason(spec, a, top_strategies=top, basis_dir=layout.venue_basis_dir)
        if why is not None:
            out[spec.name] = why
    return out


__all__ = ["arbitrage_reason", "cash_reason", "cash_reasons", "tuned_series"]
