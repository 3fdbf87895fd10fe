"""The selector's training rows, from discovery's out-of-sample history only.

A *decision window* is a UTC day (``every``). For each window starting at ``D``:

- **state**: :func:`~trading_pipeline.selector.state.state_frame` at the last bar that has
  *closed* by ``D`` (open_time + interval <= D, i.e. open_time < D), never a bar inside the
  window;
- **outcome**: every candidate's net return over the window, compounded from its study's
  out-of-sample per-bar returns (``StudyResult.returns``: each fold's test window traded with
  the parameters chosen on its own train window, fees and slippage on); cash earns 0;
  buy-and-hold from ``StudyResult.bh_returns``;
- **label**: the candidate with the best window return (cash, listed first, wins ties and
  every window where all candidates lose); ``label_end`` = the window's end, for purging.

Only windows that every candidate covers completely (all bars present, out of sample) are
kept. Following a *sequence* of choices costs more than the candidates' own returns: each
change of choice pays fee + slippage per side moved (out of the old, into the new; cash has
no side), see :func:`follow`.

The candidate set (:func:`select_candidates`): for each bot of the fleet
(:mod:`trading_pipeline.bots.spec`), the best study of each (family, symbol) it may run, at
its interval; the union ordered best first and capped, plus cash. "Best" is judged on the
*development period only*: the training's held-out period starts at the first held-out
decision window of the fleet-matching studies' common coverage (the rule of
:func:`~trading_pipeline.selector.cv.holdout_split`, :func:`selection_cutoff`), and the studies
are scored on their out-of-sample returns strictly before that cut-off (development trades,
then deflated Sharpe probability, then Sharpe; :func:`development_scores`). Discovery's own
ranking (:func:`~trading_pipeline.discovery.ranking.rank`) uses each study's whole history,
held-out period included, so it never picks the candidates, nor (``selector train``,
:func:`results_from_catalog`) which studies are pre-filtered for them: that cap uses the same
development-only score (:func:`prefilter`). The cut-off is recorded in the dataset
(``selection``) and training never holds out a row before it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.discovery.catalog import StudyCatalog
from trading_pipeline.discovery.ranking import RankingRule
from trading_pipeline.discovery.results import StudyResult, deflate, trial_variance
from trading_pipeline.discovery.robustness import sharpe
from trading_pipeline.discovery.tuning import TuneSpec
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_path, atomic_write_text
from trading_pipeline.handoff import BotLike
from trading_pipeline.market.schema import INTERVAL_MS, UTC_US
from trading_pipeline.regimes import get_labeller
from trading_pipeline.selector.cv import holdout_split
from trading_pipeline.selector.model import CASH, CASH_ID, Candidate, candidate_id
from trading_pipeline.selector.state import STATE_WARMUP_BARS, state_frame

DEFAULT_MAX_CANDIDATES = 8
DEFAULT_HOLDOUT_FRACTION = 0.25
PREFILTER_RULE = (
    "every study the ranking document lists (its order ignored) that a bot of the fleet may "
    "run, usable; at most `limit`, best first by development trades, deflated Sharpe "
    "probability and Sharpe on out-of-sample returns strictly before the held-out cut-off"
)
SELECTION_RULE = (
    "fleet match; per (family, symbol, interval) and for the cap: at least min_trades "
    "development entries first, then deflated Sharpe probability, then per-bar Sharpe, all "
    "on out-of-sample returns strictly before the held-out cut-off"
)
REGIME_LABELLER = "rules"
ROWS_FILE = "training_set.parquet"
META_FILE = "training_set.json"


@dataclass
class SelectorDataset:
    """Decision rows (state → label) with every candidate's window return beside them."""

    frame: pl.DataFrame  # decision_time, label_end, label, features…
    returns: np.ndarray  # rows × candidates, net window return (cash column = 0)
    regimes: np.ndarray  # rows × candidates, regime of record of the candidate's series
    bh: dict[str, np.ndarray]  # series → buy-and-hold window return per row
    candidates: tuple[Candidate, ...]
    feature_names: tuple[str, ...]
    series: tuple[str, ...]
    interval: str
    every: str
    switch_cost: float  # per side moved, fraction
    studies: dict[str, str] = field(default_factory=dict)  # candidate id → study group
    provenance: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)  # how the candidates were chosen

    @property
    def candidate_cutoff(self) -> datetime | None:
        """The candidates were chosen on returns before this time: nothing from it on may be
        development-only information, so the held-out period never starts earlier."""
        cutoff = self.selection.get("cutoff")
        return None if cutoff is None else datetime.fromisoformat(str(cutoff))

    @property
    def n(self) -> int:
        return self.frame.height

    @property
    def decision_times(self) -> np.ndarray:
        return self.frame.get_column("decision_time").to_numpy()

    @property
    def label_ends(self) -> np.ndarray:
        return self.frame.get_column("label_end").to_numpy()

    @property
    def labels(self) -> np.ndarray:
        """Index into ``candidates`` of each row's best candidate."""
        ids = [c.id for c in self.candidates]
        return np.array([ids.index(v) for v in self.frame.get_column("label")], dtype=np.int64)

    def x(self, rows: np.ndarray | None = None) -> np.ndarray:
        df = self.frame.select(list(self.feature_names))
        m = df.to_numpy().astype(float)
        return m if rows is None else m[rows]

    def summary(self) -> dict[str, Any]:
        counts = self.frame.get_column("label").value_counts(sort=True)
        return {
            "rows": self.n,
            "first_decision": str(self.frame["decision_time"][0]) if self.n else None,
            "last_decision": str(self.frame["decision_time"][-1]) if self.n else None,
            "candidates": [c.id for c in self.candidates],
            "features": len(self.feature_names),
            "series": list(self.series),
            "interval": self.interval,
            "every": self.every,
            "switch_cost_per_side": self.switch_cost,
            "label_counts": {r[0]: int(r[1]) for r in counts.iter_rows()},
            "studies": dict(self.studies),
            "candidate_selection": {k: v for k, v in self.selection.items() if k != "scores"},
        }

    # --- persistence (the Dagster asset writes it; the model asset reads it) ---------------

    def save(self, folder: str | Path) -> Path:
        """``training_set.parquet`` (rows, returns, regimes, buy-and-hold) + ``.json`` (meta)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cols = {f"ret::{c.id}": self.returns[:, j] for j, c in enumerate(self.candidates)}
        cols |= {f"regime::{c.id}": self.regimes[:, j] for j, c in enumerate(self.candidates)}
        cols |= {f"bh::{s}": v for s, v in self.bh.items()}
        wide = pl.concat([self.frame, pl.DataFrame(cols)], how="horizontal")
        with atomic_path(folder / ROWS_FILE) as tmp:
            wide.write_parquet(tmp)
        meta = {
            "candidates": [c.to_json() for c in self.candidates],
            "feature_names": list(self.feature_names),
            "series": list(self.series),
            "bh_series": list(self.bh),
            "interval": self.interval,
            "every": self.every,
            "switch_cost": self.switch_cost,
            "studies": self.studies,
            "provenance": self.provenance,
            "selection": self.selection,
        }
        atomic_write_text(folder / META_FILE, json.dumps(meta, indent=1, default=str))
        return folder / ROWS_FILE

    @classmethod
    def load(cls, folder: str | Path) -> SelectorDataset:
        folder = Path(folder)
        if not (folder / ROWS_FILE).is_file() or not (folder / META_FILE).is_file():
            raise UserInputError(f"no selector training set in {folder}; build it first")
        meta = json.loads((folder / META_FILE).read_text())
        wide = pl.read_parquet(folder / ROWS_FILE)
        cands = tuple(Candidate.from_json(c) for c in meta["candidates"])
        feats = tuple(meta["feature_names"])
        frame = wide.select("decision_time", "label_end", "label", *feats)
        returns = np.column_stack([wide[f"ret::{c.id}"].to_numpy() for c in cands])
        regimes = np.column_stack(
            [wide[f"regime::{c.id}"].to_numpy().astype(object) for c in cands]
        )
        bh = {s: wide[f"bh::{s}"].to_numpy() for s in meta["bh_series"]}
        return cls(
            frame=frame,
            returns=returns,
            regimes=regimes,
            bh=bh,
            candidates=cands,
            feature_names=feats,
            series=tuple(meta["series"]),
            interval=meta["interval"],
            every=meta["every"],
            switch_cost=float(meta["switch_cost"]),
            studies=dict(meta.get("studies") or {}),
            provenance=dict(meta.get("provenance") or {}),
            selection=dict(meta.get("selection") or {}),
        )


def _symbol_interval(series: str) -> tuple[str, str]:
    """``spot-BTCUSDT-1h`` → (``BTCUSDT``, ``1h``)."""
    parts = series.rsplit("-", 2)
    if len(parts) != 3:
        return series, ""
    return parts[1], parts[2]


def _matches(r: StudyResult | TuneSpec, bot: BotLike) -> bool:
    spec = r if isinstance(r, TuneSpec) else r.spec
    symbol, interval = _symbol_interval(spec.series)
    return (
        spec.family in bot.families
        and symbol in bot.symbols
        and (interval or spec.interval) == bot.interval
    )


def fleet_matches(results: Sequence[StudyResult], fleet: Sequence[BotLike]) -> list[StudyResult]:
    """The studies some bot of the fleet may run (family, symbol and interval)."""
    if not results:
        raise UserInputError("no discovery results to choose candidates from")
    matching = [r for r in results if any(_matches(r, bot) for bot in fleet)]
    if not matching:
        raise UserInputError(
            "no discovery result matches a bot of the fleet (family, symbol and interval)"
        )
    return matching


def _expected_bars(r: StudyResult, delta: timedelta) -> int:
    if r.spec.interval not in INTERVAL_MS:
        raise UserInputError(f"study {r.spec.study_group} has an unknown interval")
    return int(delta / timedelta(milliseconds=INTERVAL_MS[r.spec.interval]))


def selection_cutoff(
    results: Sequence[StudyResult],
    *,
    fleet: Sequence[BotLike],
    every: str = "1d",
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
) -> datetime:
    """The first held-out decision time: the decision windows every fleet-matching study
    covers completely, split by :func:`~.cv.holdout_split` as training splits its rows. It
    depends on the studies' coverage only, never on their returns."""
    delta = _every_delta(every)
    windows: pl.DataFrame | None = None
    for r in fleet_matches(results, fleet):
        w = _window_returns(r.open_time, r.returns, every, _expected_bars(r, delta), "r")
        w = w.select("window")
        windows = w if windows is None else windows.join(w, on="window", how="inner")
    assert windows is not None
    times = windows.get_column("window").sort()
    if times.len() == 0:
        raise UserInputError(
            "the studies matching the fleet share no complete out-of-sample decision window"
        )
    try:
        _, hold = holdout_split(times.len(), holdout_fraction)
    except ValueError as exc:
        raise UserInputError(f"cannot hold out the decision windows: {exc}") from exc
    cutoff: datetime = times[int(hold[0])]
    return cutoff


def development_scores(
    results: Sequence[StudyResult], cutoff: datetime, rule: RankingRule | None = None
) -> dict[str, dict[str, Any]]:
    """Per study group, its statistics on the out-of-sample bars strictly before ``cutoff``:
    entries, deflated Sharpe probability and per-bar Sharpe. The deflation's benchmark uses
    the trials of the folds whose test window ends before the cut-off only (their count
    summed over the studies, their Sharpe variance pooled weighted by trials), so no number
    from the held-out period enters. PBO and consistency are whole-history statistics in
    discovery and are not used."""
    rule = rule or RankingRule()
    dev: dict[str, tuple[np.ndarray, int, float, int]] = {}
    for r in results:
        k = int((r.open_time.cast(UTC_US) < cutoff).sum())
        first = r.folds[0].test[0] if r.folds else 0
        folds = [f for f in r.folds if f.test[1] - first <= k]
        fold_sharpes: list[list[float]] = []
        if {"fold", "test_sharpe_per_bar"} <= set(r.trials.columns):
            for f in folds:
                one = r.trials.filter(pl.col("fold") == f.index)
                fold_sharpes.append(one.get_column("test_sharpe_per_bar").to_list())
        variance = trial_variance(fold_sharpes)
        trades = int(np.sum(r.entries[:k]))
        dev[r.spec.study_group] = (r.returns[:k], sum(f.trials for f in folds), variance, trades)
    total = sum(t for _, t, _, _ in dev.values())
    weights = [max(t, 1) for _, t, _, _ in dev.values()]
    pooled = float(np.average([v for _, _, v, _ in dev.values()], weights=weights))
    out: dict[str, dict[str, Any]] = {}
    for group, (returns, _, _, trades) in dev.items():
        p = deflate(returns, pooled, total).probability if returns.size >= 2 else 0.0
        out[group] = {
            "development_bars": int(returns.size),
            "trades": trades,
            "eligible": trades >= rule.min_trades,
            "dsr_probability": float(p) if np.isfinite(p) else 0.0,
            "sharpe_per_bar": sharpe(returns),
        }
    return out


def _development_key(
    scores: Mapping[str, Mapping[str, Any]],
) -> Callable[[StudyResult], tuple[bool, float, float, str]]:
    """Best first on the development period only: eligible (enough development trades), then
    development deflated Sharpe probability, then development Sharpe, then the name."""

    def key(r: StudyResult) -> tuple[bool, float, float, str]:
        s = scores[r.spec.study_group]
        return (not s["eligible"], -s["dsr_probability"], -s["sharpe_per_bar"], r.spec.study_group)

    return key


def _choose(
    results: Sequence[StudyResult],
    *,
    fleet: Sequence[BotLike],
    max_candidates: int,
    rule: RankingRule | None,
    every: str,
    holdout_fraction: float,
) -> tuple[list[StudyResult], dict[str, Any]]:
    """The capped candidate studies and the record of how they were chosen."""
    if max_candidates < 1:
        raise UserInputError("max_candidates must be at least 1")
    matching = fleet_matches(results, fleet)
    cutoff = selection_cutoff(matching, fleet=fleet, every=every, holdout_fraction=holdout_fraction)
    scores = development_scores(matching, cutoff, rule)
    key = _development_key(scores)

    best: dict[tuple[str, str, str], StudyResult] = {}
    for r in sorted(matching, key=key):
        symbol, interval = _symbol_interval(r.spec.series)
        best.setdefault((r.spec.family, symbol, interval or r.spec.interval), r)
    ranked = sorted({r.spec.study_group: r for r in best.values()}.values(), key=key)
    # each bot's own best study first, so a bot with many series (bot2's ten 5-minute coins)
    # cannot crowd another bot out of the capped list; the rest fill it best first
    reserved: dict[str, StudyResult] = {}
    for bot in fleet:
        mine = [r for r in ranked if _matches(r, bot)]
        if mine:
            reserved.setdefault(mine[0].spec.study_group, mine[0])
    rest = [r for r in ranked if r.spec.study_group not in reserved]
    picked = sorted([*reserved.values(), *rest[: max(0, max_candidates - len(reserved))]], key=key)
    chosen = {r.spec.study_group for r in picked}
    record = {
        "rule": SELECTION_RULE,
        "cutoff": cutoff.isoformat(),
        "holdout_fraction": holdout_fraction,
        "every": every,
        "min_trades": (rule or RankingRule()).min_trades,
        "max_candidates": max_candidates,
        "reserved_per_bot": sorted(reserved),
        "matching_studies": len(matching),
        "scores": [
            {"study": r.spec.study_group, "picked": r.spec.study_group in chosen}
            | scores[r.spec.study_group]
            for r in sorted(matching, key=key)
        ],
    }
    return picked, record


def prefilter(
    results: Sequence[StudyResult],
    *,
    fleet: Sequence[BotLike],
    limit: int,
    rule: RankingRule | None = None,
    every: str = "1d",
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
) -> tuple[list[StudyResult], dict[str, Any]]:
    """At most ``limit`` of the fleet-matching ``results``, best first by the same
    development-only score the candidates are chosen by (:func:`development_scores` before
    :func:`selection_cutoff`), and the record of it. Discovery's ranking (whole history, the
    held-out period included) never decides which studies survive the cap."""
    if limit < 1:
        raise UserInputError("the pre-filter keeps at least 1 study")
    matching = fleet_matches(results, fleet)
    cutoff = selection_cutoff(matching, fleet=fleet, every=every, holdout_fraction=holdout_fraction)
    ordered = sorted(matching, key=_development_key(development_scores(matching, cutoff, rule)))
    kept = ordered[:limit]
    record = {
        "rule": PREFILTER_RULE,
        "cutoff": cutoff.isoformat(),
        "limit": limit,
        "fleet_matching": len(matching),
        "kept": [r.spec.study_group for r in kept],
        "dropped": [r.spec.study_group for r in ordered[limit:]],
    }
    return kept, record


def select_candidates(
    results: Sequence[StudyResult],
    *,
    fleet: Sequence[BotLike],
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    rule: RankingRule | None = None,
    every: str = "1d",
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
) -> list[StudyResult]:
    """Per bot, the best study of each (family, symbol) it may run at its interval; the union
    best first, at most ``max_candidates`` (cash is added separately) — but every bot's own best
    study is always among them, so one bot's many series cannot crowd another out. "Best" is judged on
    the returns before :func:`selection_cutoff` only (:func:`development_scores`), so the
    held-out period the training will judge on never influences which studies compete."""
    picked, _ = _choose(
        results,
        fleet=fleet,
        max_candidates=max_candidates,
        rule=rule,
        every=every,
        holdout_fraction=holdout_fraction,
    )
    return picked


def candidate_from_result(r: StudyResult) -> Candidate:
    """The candidate a tuned study offers: its newest fold's parameters and its cost model."""
    return Candidate(
        id=candidate_id(r.spec.family, r.spec.series),
        family=r.spec.family,
        version=int(r.spec.family_version),
        params=dict(r.best_params),
        series=r.spec.series,
        interval=r.spec.interval,
        **r.spec.cost_fractions(),  # fee, slippage: they travel to the bot's assignment
    )


def _window_returns(
    open_time: pl.Series, returns: np.ndarray, every: str, expected: int, name: str
) -> pl.DataFrame:
    """``window, <name>``: compounded return of each complete window."""
    df = pl.DataFrame({"open_time": open_time.cast(UTC_US), "r": np.asarray(returns, float)})
    agg = (
        df.sort("open_time")
        .group_by_dynamic("open_time", every=every)
        .agg(((pl.col("r") + 1.0).product() - 1.0).alias(name), pl.len().alias("_n"))
    )
    return agg.filter(pl.col("_n") == expected).select(pl.col("open_time").alias("window"), name)


def _every_delta(every: str) -> timedelta:
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    try:
        value, unit = int(every[:-1]), every[-1]
        return timedelta(seconds=value * units[unit])
    except (ValueError, KeyError):
        raise UserInputError(f"decision window {every!r} must look like 1d, 12h or 1w") from None


def build_dataset(
    results: Sequence[StudyResult],
    bars: Mapping[str, pl.DataFrame],
    *,
    every: str = "1d",
    costs: CostModel | None = None,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    rule: RankingRule | None = None,
    fleet: Sequence[BotLike],
    fear_greed: pl.DataFrame | None = None,
    provenance: Mapping[str, Any] | None = None,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    regime_labels: Mapping[str, pl.DataFrame] | None = None,
    news: pl.DataFrame | None = None,
) -> SelectorDataset:
    """Decision rows from ``results`` (out-of-sample returns) and the series' ``bars``.

    ``bars`` maps series keys to their full bar history (the state needs the bars *before*
    each window, also before the out-of-sample period starts). ``holdout_fraction`` is the
    share the training will hold out: the candidates are chosen on the returns before it
    (see the module docstring). ``regime_labels`` maps series keys to stored labels
    (``open_time, regime``, e.g. what the ``regime_periods`` step wrote); a series without
    them is labelled here by the rules labeller. ``news`` (scored items, see
    :mod:`trading_pipeline.news`) adds the news-sentiment features to the state.
    """
    delta = _every_delta(every)
    picked, selection = _choose(
        results,
        fleet=fleet,
        max_candidates=max_candidates,
        rule=rule,
        every=every,
        holdout_fraction=holdout_fraction,
    )
    candidates = [CASH, *(candidate_from_result(r) for r in picked)]
    intervals = sorted({r.spec.interval for r in picked})
    interval = max(intervals, key=lambda i: sum(r.spec.interval == i for r in picked))
    series = tuple(sorted({r.spec.series for r in picked if r.spec.interval == interval}))
    missing = [s for s in {r.spec.series for r in picked} if s not in bars]
    if missing:
        raise UserInputError(f"no bars given for series {', '.join(sorted(missing))}")
    costs = costs or (picked[0].spec.costs if picked else CostModel())

    # every candidate's (and each series' buy-and-hold) window returns, complete windows only
    table: pl.DataFrame | None = None
    bh_cols: dict[str, str] = {}
    for r, cand in zip(picked, candidates[1:], strict=True):
        expected = _expected_bars(r, delta)
        w = _window_returns(r.open_time, r.returns, every, expected, f"ret::{cand.id}")
        if r.spec.series not in bh_cols:
            bh_cols[r.spec.series] = f"bh::{r.spec.series}"
            bh = _window_returns(r.open_time, r.bh_returns, every, expected, bh_cols[r.spec.series])
            w = w.join(bh, on="window", how="inner")
        table = w if table is None else table.join(w, on="window", how="inner")
    assert table is not None
    table = table.sort("window")
    if table.height == 0:
        raise UserInputError("the candidates share no complete out-of-sample decision window")

    # the state at each window's start: last bar closed by then (open_time + interval <= start)
    step = timedelta(milliseconds=INTERVAL_MS[interval])
    state = state_frame(
        {s: bars[s] for s in series}, interval=interval, fear_greed=fear_greed, news=news
    )
    feature_names = [c for c in state.columns if c != "open_time"]
    state = state.with_columns((pl.col("open_time") + step).alias("_available")).drop("open_time")
    rows = table.join_asof(
        state.sort("_available"),
        left_on="window",
        right_on="_available",
        strategy="backward",
        tolerance=step * 4,  # a stale state (gap in the bars) is no state
    )
    # regimes of record (the full rules labeller, causal) of every series, at the same bar
    labeller = get_labeller(REGIME_LABELLER)
    for s in sorted({r.spec.series for r in picked}):
        given = (regime_labels or {}).get(s)
        source = given if given is not None else labeller.label(bars[s].sort("open_time"))
        lab = source.select(
            (pl.col("open_time") + step).alias("_at"), pl.col("regime").alias(f"regime@{s}")
        )
        rows = rows.join_asof(
            lab.sort("_at"), left_on="window", right_on="_at", strategy="backward"
        ).drop("_at")
    complete = pl.all_horizontal(
        pl.col(feature_names).is_not_nan() & pl.col(feature_names).is_not_null()
    )
    rows = rows.filter(pl.col("_available").is_not_null() & complete)
    if rows.height == 0:
        raise UserInputError(
            f"no decision window has a full market state (the state needs {STATE_WARMUP_BARS} "
            "bars before it)"
        )
    ret = np.column_stack(
        [np.zeros(rows.height)] + [rows[f"ret::{c.id}"].to_numpy() for c in candidates[1:]]
    )
    labels = np.argmax(ret, axis=1)  # cash first: wins ties and all-negative windows
    regimes = np.column_stack(
        [np.full(rows.height, "", dtype=object)]
        + [rows[f"regime@{c.series}"].to_numpy().astype(object) for c in candidates[1:]]
    )
    frame = rows.select(
        pl.col("window").alias("decision_time"),
        (pl.col("window") + delta).alias("label_end"),
        pl.Series("label", [candidates[i].id for i in labels], dtype=pl.String),
        *feature_names,
    )
    return SelectorDataset(
        frame=frame,
        returns=ret,
        regimes=regimes,
        bh={s: rows[col].to_numpy() for s, col in bh_cols.items()},
        candidates=tuple(candidates),
        feature_names=tuple(feature_names),
        series=series,
        interval=interval,
        every=every,
        switch_cost=costs.fee + costs.slippage,
        studies={candidate_id(r.spec.family, r.spec.series): r.spec.study_group for r in picked},
        provenance=dict(provenance or {}),
        selection=selection,
    )


@dataclass
class Discovered:
    """Studies re-collected from discovery's storage, with their series' bars."""

    results: list[StudyResult]
    bars: dict[str, pl.DataFrame]
    provenance: dict[str, Any]


def results_from_catalog(
    catalog: StudyCatalog,
    *,
    fleet: Sequence[BotLike],
    limit: int = 40,
    rule: RankingRule | None = None,
    every: str = "1d",
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
) -> Discovered:
    """The studies ``top_strategies.json`` lists that a bot of ``fleet`` may run, as far as the
    catalog finds them usable (family version, code and bars unchanged since tuning; the others
    are listed in the provenance), at most ``limit`` of them chosen by :func:`prefilter`.

    The document's *order* is discovery's whole-history ranking (the held-out period included):
    it is ignored. Which studies reach the candidate choice depends on development returns only,
    the same rule :func:`build_dataset` applies with the same ``every``/``holdout_fraction``."""
    doc = catalog.read_top()
    entries_listed = list(doc.get("ranked") or doc.get("top") or [])
    listed = sorted(set(catalog.ranked_groups(doc, limit=len(entries_listed))))
    matching: list[str] = []
    other = 0
    for group in listed:
        if not group:
            continue
        try:
            spec = catalog.spec(group)
        except UserInputError:
            matching.append(group)  # usable() names why it is skipped
            continue
        if any(_matches(spec, bot) for bot in fleet):
            matching.append(group)
        else:
            other += 1
    usable = catalog.usable(matching)
    if not usable.entries:
        raise UserInputError(
            f"no usable study in {catalog.top_path} matches a bot of the fleet: "
            f"{'; '.join(usable.skipped) or 'none listed'}"
        )
    kept, record = prefilter(
        usable.results,
        fleet=fleet,
        limit=limit,
        rule=rule,
        every=every,
        holdout_fraction=holdout_fraction,
    )
    keep = {r.spec.study_group for r in kept}
    entries = [e for e in usable.entries if e.group in keep]
    ranked = {str(e.get("study")): e for e in entries_listed if isinstance(e, dict)}
    partitions = [
        str(ranked[e.group]["dagster_partition"])
        for e in entries
        if ranked.get(e.group, {}).get("dagster_partition")
    ]
    bars: dict[str, pl.DataFrame] = {}
    for e in entries:
        key = e.result.spec.series
        if key not in bars or bars[key].height < e.bars.height:
            bars[key] = e.bars
    provenance = {
        "top_file": str(catalog.top_path),
        "top_generated_at": doc.get("generated_at"),
        "discovery_dagster_run_id": doc.get("dagster_run_id"),
        "partitions": partitions,
        "skipped": usable.skipped,
        "prefilter": record | {"listed": len(listed), "not_in_fleet": other},
    }
    return Discovered([e.result for e in entries], bars, provenance)


def follow(
    choices: np.ndarray, returns: np.ndarray, switch_cost: float, *, start: int = 0
) -> np.ndarray:
    """Net return per row of following ``choices`` (indices into the candidates, 0 = cash).

    A row whose choice differs from the previous one pays ``switch_cost`` per side moved:
    leaving a strategy is one side, entering one another (cash has no side). The first row
    starts from ``start`` (cash).
    """
    choices = np.asarray(choices, dtype=np.int64)
    r = returns[np.arange(len(choices)), choices]
    prev = np.concatenate([[start], choices[:-1]])
    sides = np.where(prev != choices, (prev != 0).astype(int) + (choices != 0).astype(int), 0)
    return (1.0 + r) * (1.0 - switch_cost) ** sides - 1.0


__all__ = [
    "CASH_ID",
    "SelectorDataset",
    "build_dataset",
    "development_scores",
    "fleet_matches",
    "follow",
    "prefilter",
    "results_from_catalog",
    "select_candidates",
    "selection_cutoff",
]
