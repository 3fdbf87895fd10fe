"""A baseline policy registered as the selector's champion when the model does not beat it.

The champion must earn its place: a trained selector that loses, on held-out rows and net of
switching costs, to the best baseline (the single best strategy chosen on development rows,
the regime lookup learned on them, cash) is not promoted; that baseline is registered instead,
as a version tagged ``policy=baseline:<kind>``, and decisions and deployments follow it. It
answers the same calls the decision makes of a model (``predict_proba``), one-hot on its choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trading_pipeline.selector.model import CASH_ID, Candidate

KINDS = ("single_best", "regime_lookup", "cash")


class BaselinePolicy:
    """Always one candidate (``single_best``, ``cash``), or the candidate whose current regime did
    best on the development rows (``regime_lookup``; cash when no regime's mean is positive)."""

    decision_rule = "argmax"

    def __init__(
        self,
        kind: str,
        *,
        candidates: Sequence[Candidate],
        series: Sequence[str],
        interval: str,
        warmup_bars: int,
        choice: str = CASH_ID,
        regime_scores: Mapping[str, float] | None = None,
        decision_every: str = "1d",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown baseline policy {kind!r}; known: {', '.join(KINDS)}")
        ids = [c.id for c in candidates]
        if CASH_ID not in ids or choice not in ids:
            raise ValueError("the policy's choice and cash must be among the candidates")
        self.kind = kind
        self.candidates: tuple[Candidate, ...] = tuple(candidates)
        self.series: tuple[str, ...] = tuple(series)
        self.interval = interval
        self.warmup_bars = int(warmup_bars)
        self.decision_every = decision_every
        self.choice = CASH_ID if kind == "cash" else choice
        # "candidate id|regime" → mean log window return on development rows
        self.regime_scores: dict[str, float] = dict(regime_scores or {})
        self.feature_names: tuple[str, ...] = ()
        self.info: dict[str, Any] = dict(info or {}) | {"policy": f"baseline:{kind}"}

    @property
    def needs_regimes(self) -> bool:
        return self.kind == "regime_lookup"

    @property
    def candidate_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.candidates)

    def choose_id(self, regimes: Mapping[str, str] | None = None) -> str:
        """The policy's pick; ``regimes`` maps each series key to its current regime."""
        if self.kind != "regime_lookup":
            return self.choice
        best, best_score = CASH_ID, 0.0
        for c in self.candidates:
            if c.id == CASH_ID or regimes is None or c.series not in regimes:
                continue
            score = self.regime_scores.get(f"{c.id}|{regimes[c.series]}")
            if score is not None and score > best_score:
                best, best_score = c.id, score
        return best

    def predict_proba(
        self, state: Mapping[str, float], regimes: Mapping[str, str] | None = None
    ) -> dict[str, float]:
        pick = self.choose_id(regimes)
        return {cid: float(cid == pick) for cid in self.candidate_ids}

    def predict(self, x: Any) -> np.ndarray:
        """One pick per row (no regimes in a plain feature matrix: a lookup answers cash)."""
        return np.array([self.choose_id(None) for _ in range(len(x))], dtype=object)

    def choices_on(self, candidate_ids: Sequence[str], regimes: np.ndarray) -> np.ndarray:
        """Indices into ``candidate_ids`` chosen on rows whose regimes of record (rows ×
        candidates, in that order) are given; a pick the dataset lacks counts as cash."""
        series = {c.id: c.series for c in self.candidates}
        out = np.zeros(len(regimes), dtype=np.int64)
        for i, row in enumerate(regimes):
            by_series = {
                series[cid]: str(row[j]) for j, cid in enumerate(candidate_ids) if cid in series
            }
            pick = self.choose_id(by_series)
            out[i] = list(candidate_ids).index(pick) if pick in candidate_ids else 0
        return out

    def describe(self) -> dict[str, Any]:
        return {"policy": f"baseline:{self.kind}", "choice": self.choice, **self.info}

    def __repr__(self) -> str:
        pick = self.choice if self.kind != "regime_lookup" else "by regime"
        return f"BaselinePolicy({self.kind}, {pick})"
