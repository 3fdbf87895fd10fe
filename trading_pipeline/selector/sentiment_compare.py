"""The selector trained with and without the news-sentiment features, judged on the same
held-out rows.

Both datasets come from the same discovery results, bars and settings; the only difference is
the news features in the state (never missing: 0.0 and 0 where no item is in a window, so both
have exactly the same decision rows). Each is trained by :func:`~.train.fit_and_evaluate`
(purged CV on the development rows, one held-out period, the baselines on the same rows);
nothing is registered. When the items carry no information (no archive: all zeros, or noise)
the two should come out about equal; a difference on a short held-out period is not evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.discovery.results import StudyResult
from trading_pipeline.errors import UserInputError
from trading_pipeline.selector.dataset import SelectorDataset, build_dataset
from trading_pipeline.selector.train import MODEL, TrainReport, TrainSettings, fit_and_evaluate

HEADER = ("policy", "net return", "Sharpe", "hit rate", "max drawdown", "switches", "log loss")


@dataclass(frozen=True)
class SentimentComparison:
    without: TrainReport
    with_news: TrainReport
    rows: int
    news_features: tuple[str, ...]
    news_items: int  # scored items the state could see
    rows_with_news: int  # decision rows whose 24h window held at least one item

    def table(self) -> list[tuple[Any, ...]]:
        """(policy, metrics…): the selector without and with news, then the baselines (the
        same rows, so the same numbers in both reports)."""
        out = []
        for name, report in (("selector without news", self.without), ("selector with news", self.with_news)):  # fmt: skip
            m = report.holdout[MODEL]
            out.append((name, *(m.get(k) for k in ("net_return", "sharpe", "hit_rate", "max_drawdown", "switches", "log_loss"))))  # fmt: skip
        for name, m in self.without.holdout.items():
            if name != MODEL:
                out.append((name, *(m.get(k) for k in ("net_return", "sharpe", "hit_rate", "max_drawdown", "switches", "log_loss"))))  # fmt: skip
        return out

    @property
    def delta_net_return(self) -> float:
        return float(
            self.with_news.holdout[MODEL]["net_return"] - self.without.holdout[MODEL]["net_return"]
        )

    def markdown(self) -> str:
        def fmt(v: Any, column: str) -> str:
            if v is None or (isinstance(v, float) and not np.isfinite(v)):
                return "-"
            if column == "switches":
                return str(int(v))
            return f"{v:+.4f}" if isinstance(v, float) else str(v)

        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += [
            "| " + " | ".join(fmt(v, c) for v, c in zip(row, HEADER, strict=True)) + " |"
            for row in self.table()
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "heldout": {
                "start": self.with_news.holdout_start,
                "end": self.with_news.holdout_end,
                "rows": self.with_news.n_holdout,
            },
            "news_features": list(self.news_features),
            "news_items": self.news_items,
            "rows_with_news": self.rows_with_news,
            "without": self.without.holdout,
            "with_news": self.with_news.holdout,
            "configs": {"without": self.without.config.label, "with": self.with_news.config.label},
            "delta_net_return": self.delta_net_return,
        }


def compare_sentiment(
    results: Sequence[StudyResult],
    bars: Mapping[str, pl.DataFrame],
    news: pl.DataFrame,
    *,
    fleet: Sequence[Any],
    every: str = "1d",
    holdout_fraction: float = 0.25,
    max_candidates: int = 8,
    settings: TrainSettings | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> SentimentComparison:
    """Build both datasets, train both, and return the held-out comparison."""
    settings = settings or TrainSettings(holdout_fraction=holdout_fraction)

    def dataset(with_news: bool) -> SelectorDataset:
        return build_dataset(
            results,
            bars,
            every=every,
            max_candidates=max_candidates,
            holdout_fraction=holdout_fraction,
            fleet=fleet,
            provenance=provenance,
            news=news if with_news else None,
        )

    plain, rich = dataset(False), dataset(True)
    if not plain.frame.get_column("decision_time").equals(rich.frame.get_column("decision_time")):
        raise UserInputError("with and without news the decision rows differ")  # never expected
    added = tuple(f for f in rich.feature_names if f not in plain.feature_names)
    counts = rich.frame.get_column("x.news_items").to_numpy()
    return SentimentComparison(
        without=fit_and_evaluate(plain, settings),
        with_news=fit_and_evaluate(rich, settings),
        rows=rich.n,
        news_features=added,
        news_items=int(news.get_column("compound").is_not_null().sum()),
        rows_with_news=int((counts > 0).sum()),
    )
