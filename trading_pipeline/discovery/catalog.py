"""The catalog of tuned studies: which are usable, the top-strategies file, best per regime.

One place decides which study groups in the Optuna storage can be used downstream (the
performance matrix, the ranking, the selector's training set, ``selector train``): a group is
usable when its family still has the version it was tuned with and the history store still
holds the bars it was tuned on (same count, same fingerprint). Everything else is skipped
with its reason. The catalog also reads and writes ``top_strategies.json`` where
:class:`~trading_pipeline.settings.DataLayout` says it lives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_pipeline.discovery.matrix import ALL, BENCHMARK, INSUFFICIENT, OK
from trading_pipeline.discovery.results import StudyResult, collect
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import (
    SPEC_ATTR,
    SUPERSEDED,
    TuneSpec,
    code_fingerprint,
    fingerprint,
    load_spec,
)
from trading_pipeline.discovery.universe_bars import is_universe_key, load_universe
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_write_text
from trading_pipeline.history.layout import Series
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import get_family

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

FOLD_MARK = "-wf1of"  # a group's first fold study is ``<group>-wf1of<folds>``


@dataclass(frozen=True)
class CatalogEntry:
    """A usable study group: its out-of-sample result and the bars it was tuned on."""

    result: StudyResult
    bars: pl.DataFrame

    @property
    def group(self) -> str:
        return self.result.spec.study_group


@dataclass
class Usable:
    """The usable study groups, in the order asked, and the skipped ones with their reason."""

    entries: list[CatalogEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def results(self) -> list[StudyResult]:
        return [e.result for e in self.entries]

    def bars_by_series(self) -> dict[str, pl.DataFrame]:
        """The longest tuned bars of each series."""
        out: dict[str, pl.DataFrame] = {}
        for e in self.entries:
            key = e.result.spec.series
            if key not in out or out[key].height < e.bars.height:
                out[key] = e.bars
        return out


class StudyCatalog:
    """The study groups of one Optuna storage, judged against one history store."""

    def __init__(self, layout: DataLayout, storage: BaseStorage | None = None) -> None:
        self.layout = layout
        self._storage = storage

    @property
    def storage(self) -> BaseStorage:
        if self._storage is None:
            self._storage = open_storage(
                self.layout.optuna_storage_url, data_dir=self.layout.data_dir
            )
        return self._storage

    # -- listing and judging --------------------------------------------------------------
    def groups(self) -> list[str]:
        """Every study group in the storage (sorted), usable or not."""
        import optuna  # lazy: optuna costs ~1 s and most callers of the module never list

        names = optuna.get_all_study_summaries(self.storage, include_best_trial=False)
        return sorted(
            {
                s.study_name.split(FOLD_MARK)[0]
                for s in names
                if FOLD_MARK in s.study_name and not s.study_name.startswith(f"{SUPERSEDED}-")
            }
        )

    def trials_by_series(self) -> dict[str, int]:
        """Per series key, every finished or pruned trial of every study group tried on it,
        usable or not (a stale or other-version study was still a try): the number of trials
        the ranking deflates each series' candidates for."""
        import optuna  # lazy: optuna costs ~1 s and most callers of the module never list

        counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        out: dict[str, int] = {}
        for summary in optuna.get_all_study_summaries(self.storage, include_best_trial=False):
            stored = summary.user_attrs.get(SPEC_ATTR)  # every fold study carries its settings
            if stored is None:
                continue
            try:
                series = TuneSpec.from_json(stored).series
            except (KeyError, TypeError, ValueError):
                continue
            study_id = self.storage.get_study_id_from_name(summary.study_name)
            n = len(self.storage.get_all_trials(study_id, deepcopy=False, states=counted))
            out[series] = out.get(series, 0) + n
        return out

    def spec(self, group: str) -> TuneSpec:
        """The settings stored with ``group`` (UserInputError when it is not in the storage)."""
        return load_spec(group, self.storage)

    def usable(self, groups: Iterable[str] | None = None) -> Usable:
        """``groups`` (default: every group in the storage), re-collected out of sample; those
        whose family changed version or whose bars changed since tuning are skipped."""
        out = Usable()
        bars: dict[str, pl.DataFrame | None] = {}
        seen: set[str] = set()
        for group in self.groups() if groups is None else groups:
            if not group or group in seen:
                continue
            seen.add(group)
            reason, entry = self._judge(group, bars)
            if entry is None:
                out.skipped.append(f"{group}: {reason}")
            else:
                out.entries.append(entry)
        return out

    def _judge(
        self, group: str, bars: dict[str, pl.DataFrame | None]
    ) -> tuple[str, CatalogEntry | None]:
        try:
            spec = self.spec(group)
        except UserInputError as exc:
            return str(exc), None
        family = get_family(spec.family)
        if family.version != spec.family_version:
            return (
                f"tuned {spec.family} v{spec.family_version}, the family is now v{family.version}",
                None,
            )
        if spec.code_fingerprint and spec.code_fingerprint != code_fingerprint(family):
            return f"tuned {spec.family} with other code (its source changed since); re-tune", None
        if spec.series not in bars:
            bars[spec.series] = self._load_bars(spec.series)
        series_bars = bars[spec.series]
        if series_bars is None:
            return f"no bars of {spec.series} in {self.layout.history_dir}", None
        head = series_bars.head(spec.n_bars)
        if head.height != spec.n_bars or fingerprint(head) != spec.data_fingerprint:
            return "the bars changed since it was tuned; re-run it", None
        try:
            result = collect(head, family, spec=spec, storage=self.storage)
        except UserInputError as exc:  # the storage no longer holds every fold
            return str(exc), None
        return "", CatalogEntry(result, head)

    def _load_bars(self, series_key: str) -> pl.DataFrame | None:
        if is_universe_key(series_key):  # a portfolio study's series: its coins joined
            try:
                return load_universe(self.layout.history_dir, series_key)
            except UserInputError:
                return None
        try:
            series = Series.parse(series_key)
            return load_store(
                self.layout.history_dir,
                market=series.market,
                symbol=series.symbol,
                interval=series.interval,
            )
        except (ValueError, CandleError):
            return None

    # -- the top-strategies file ----------------------------------------------------------
    @property
    def top_path(self) -> Path:
        return self.layout.top_strategies_path

    def write_top(self, doc: Mapping[str, Any]) -> Path:
        """Write the ranking document atomically; returns its path."""
        atomic_write_text(self.top_path, json.dumps(doc, indent=1, default=str))
        return self.top_path

    def read_top(self) -> dict[str, Any]:
        """The ranking document (UserInputError when missing or not one)."""
        path = self.top_path
        if not path.is_file():
            raise UserInputError(f"no {path}: run discovery (top_strategies) first")
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise UserInputError(f"{path} is not a top-strategies file: {exc}") from exc
        if not isinstance(doc, dict):
            raise UserInputError(f"{path} is not a top-strategies file")
        return doc

    @staticmethod
    def ranked_groups(doc: Mapping[str, Any], *, limit: int = 40) -> list[str]:
        """The study groups a ranking document lists (ranked first, else top), at most ``limit``."""
        entries = list(doc.get("ranked") or doc.get("top") or [])
        return [str(e.get("study") or "") for e in entries[:limit] if isinstance(e, dict)]


def best_per_regime(matrix: pl.DataFrame) -> pl.DataFrame:
    """Per series and regime: the strategy with the highest Sharpe among the cells whose
    ``status`` is ``ok`` (enough bars and trades, see :mod:`.matrix`), its deflated Sharpe
    probability, and buy-and-hold's beside. A regime whose every cell is insufficient keeps a
    row with no strategy and ``status`` ``insufficient``: it has no best."""
    bh = matrix.filter(pl.col("strategy") == BENCHMARK).select(
        "series",
        "regime",
        pl.col("sharpe").alias("bh_sharpe"),
        pl.col("total_return").alias("bh_return"),
    )
    tuned = matrix.filter(pl.col("strategy") != BENCHMARK)
    regimes = tuned.select("series", "regime").unique()
    best = (
        tuned.filter(pl.col("status") == OK)
        .sort("sharpe", descending=True, nulls_last=True)
        .group_by("series", "regime", maintain_order=True)
        .first()
    )
    return (
        regimes.join(best, on=["series", "regime"], how="left")
        .with_columns(pl.col("status").fill_null(INSUFFICIENT))
        .join(bh, on=["series", "regime"], how="left")
        .select(
            "series",
            "regime",
            "strategy",
            "status",
            "bars",
            "sharpe",
            "dsr_probability",
            "total_return",
            "max_drawdown",
            "trades",
            "bh_sharpe",
            "bh_return",
        )
        .sort("series", pl.col("regime") != ALL, "regime")
    )
