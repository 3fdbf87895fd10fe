"""The lookahead gate in front of every search: a family whose audit finds a leak is not tuned,
swept or ranked.

The audit (:mod:`trading_pipeline.strategies.lookahead`) runs on the most recent bars of the data
about to be searched; a clean verdict is cached by the family's code fingerprint, so a family is
audited once per version of its source (editing the file audits it again). A refusal writes
nothing: a leaky family is audited again on every attempt, until it is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from trading_pipeline.discovery.tuning import code_fingerprint
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_write_text
from trading_pipeline.strategies.base import StrategyFamily
from trading_pipeline.strategies.lookahead import audit_family

AUDIT_BARS = 6_000  # the most recent bars the gate audits (enough for every signal to fire)
AUDIT_SAMPLES = 2


class LookaheadRefused(UserInputError):
    """The family's signals use future bars (or outside data): it is not searched."""


def _cache_path(cache_dir: str | Path, name: str, fp: str) -> Path:
    return Path(cache_dir) / f"{name}-{fp}.json"


def remember(verdict: dict[str, object], *, cache_dir: str | Path, name: str) -> None:
    """Cache a clean verdict (call it once the search it allowed has written its own files)."""
    if verdict.get("verdict") == "clean" and not verdict.get("cached"):
        path = _cache_path(cache_dir, name, str(verdict["fingerprint"]))
        atomic_write_text(path, json.dumps({**verdict, "cached": True}, indent=1) + "\n")


def audit_verdict(
    family: StrategyFamily,
    bars: pl.DataFrame,
    *,
    cache_dir: str | Path | None,
    data: str,
    write: bool = True,
) -> dict[str, object]:
    """``{"verdict", "summary", "fingerprint"}`` of the family's audit, from the cache when this
    source was audited before; with ``write=False`` nothing is cached yet (see :func:`remember`)."""
    fp = code_fingerprint(family)
    cache = _cache_path(cache_dir, family.name, fp) if cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            return dict(json.loads(cache.read_text()))
        except (OSError, ValueError):
            pass  # a damaged cache entry is audited again
    report = audit_family(
        family, bars.tail(AUDIT_BARS), data=data, samples=AUDIT_SAMPLES, recursive=False
    )
    found = report.findings[0].describe() if report.findings else ""
    out: dict[str, object] = {
        "verdict": report.verdict,
        "summary": report.describe().splitlines()[0],
        "finding": found,
        "fingerprint": fp,
    }
    if cache_dir is not None and write:  # only a clean verdict is cached: a refusal writes nothing
        remember(out, cache_dir=cache_dir, name=family.name)
    return out


def require_no_lookahead(
    family: StrategyFamily,
    bars: pl.DataFrame,
    *,
    cache_dir: str | Path | None,
    data: str,
    write: bool = True,
) -> dict[str, object]:
    """The audit's verdict, or :class:`LookaheadRefused` (one line) when it found a leak."""
    verdict = audit_verdict(family, bars, cache_dir=cache_dir, data=data, write=write)
    if verdict["verdict"] == "leaky":
        raise LookaheadRefused(
            f"{family.name} v{family.version} is not tuned: its lookahead audit failed "
            f"({verdict['finding']}); fix it and re-run `trading-pipeline lookahead`"
        )
    return verdict
