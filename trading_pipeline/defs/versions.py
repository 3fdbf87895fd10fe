"""Code versions and owners of the assets (what Dagster compares to flag an asset whose code
changed since it was materialized, and who answers for it).

* discovery assets: every built-in family's ``name``, ``version`` and code fingerprint (the hash
  of its source file, :func:`~trading_pipeline.discovery.tuning.code_fingerprint`, the one that
  names the Optuna studies) combined with the source of the discovery modules that score them;
* the others: a hash of the source of the modules that compute them (the asset's own module
  and the core modules it calls), so an edit to either changes it.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from functools import cache
from pathlib import Path

from trading_pipeline.discovery.tuning import code_fingerprint
from trading_pipeline.strategies.registry import FAMILIES

DATA = "team:data"  # history, venues, features
RESEARCH = "team:research"  # discovery, selector
TRADING = "team:trading"  # bots

DISCOVERY_MODULES = (
    "trading_pipeline.discovery.tuning",
    "trading_pipeline.discovery.results",
    "trading_pipeline.discovery.evaluate",
    "trading_pipeline.discovery.matrix",
    "trading_pipeline.discovery.ranking",
    "trading_pipeline.discovery.splits",
    "trading_pipeline.backtest.account",
    "trading_pipeline.backtest.engine",
    "trading_pipeline.backtest.fused",
    "trading_pipeline.backtest.kernels",
    "trading_pipeline.backtest.costs",
    "trading_pipeline.backtest.metrics",
)


def _module_bytes(name: str) -> bytes:
    module = importlib.import_module(name)
    path = inspect.getsourcefile(module)
    return Path(path).read_bytes() if path else name.encode()


@cache
def source_version(*modules: str) -> str:
    """A 12-hex hash of the named modules' source files (order-independent)."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        h.update(name.encode() + b"\0" + _module_bytes(name) + b"\0")
    return h.hexdigest()[:12]


def families_version() -> str:
    """``name-vN-fingerprint`` of every built-in family, sorted and joined."""
    return ",".join(
        f"{f.name}-v{f.version}-{code_fingerprint(f)}"
        for f in sorted(FAMILIES.values(), key=lambda f: f.name)
    )


@cache
def discovery_version(*modules: str) -> str:
    """The built-in families' versions and fingerprints with the scoring modules' source."""
    scoring = source_version(*DISCOVERY_MODULES, *modules)
    families = hashlib.sha256(families_version().encode()).hexdigest()[:12]
    return f"families-{families}-scoring-{scoring}"
