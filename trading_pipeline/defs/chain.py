"""The whole chain as in-process Dagster runs, stage by stage, into a persistent instance.

Each stage materializes its assets by selection on the code location's global asset job (so it
holds whatever the dependency wiring is): history per series over the month range, features and
regimes per series, the cross-asset correlation over the months, discovery per family × series
with a small budget, the matrix and ranking, the selector, one decision per bot from stored
bars, the deployment of assignments and a paper replay of the last complete month. One progress
line per stage and series; Dagster's own log lines only with ``verbose``.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from trading_pipeline.defs.discovery.partitions import TUNED_FAMILIES, family_series_key
from trading_pipeline.defs.history.partitions import (
    FIRST_MONTH,
    month_key,
    previous_month,
    series_month_key,
    series_partitions,
)
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.history.published import (
    MIRROR_HINT,
    ListingError,
    VisionUnreachable,
    check_reachable,
    find_missing,
    month_list,
)
from trading_pipeline.interrupts import StopSignals

DEFAULT_FAMILIES = ("sma_cross", "momentum", "macd")
DEFAULT_TRIALS = 8  # finished trials per fold and study
DEFAULT_FOLDS = 4
TRIGGER_TAG = "trading_pipeline/trigger"
STAGES = (
    "history",
    "features",
    "discovery",
    "ranking",
    "selector",
    "decision",
    "deploy",
    "replay",
)


class ChainFailed(Exception):
    """A stage could not do its work: one line for the user, exit 1."""


@dataclass(frozen=True)
class Budget:
    """How much discovery the chain does (``TP_MAIN_FAMILIES``, ``TP_MAIN_TRIALS``,
    ``TP_MAIN_FOLDS`` or the main job's flags)."""

    families: tuple[str, ...] = DEFAULT_FAMILIES
    trials: int = DEFAULT_TRIALS
    folds: int = DEFAULT_FOLDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Budget:
        env = os.environ if env is None else env
        families = overrides.get("families") or env.get("TP_MAIN_FAMILIES") or ""
        names = tuple(f.strip() for f in str(families).split(",") if f.strip())
        trials = _positive(overrides.get("trials") or env.get("TP_MAIN_TRIALS"), "trials")
        folds = _positive(overrides.get("folds") or env.get("TP_MAIN_FOLDS"), "folds")
        budget = cls(
            families=names or DEFAULT_FAMILIES,
            trials=trials or DEFAULT_TRIALS,
            folds=folds or DEFAULT_FOLDS,
        )
        unknown = [f for f in budget.families if f not in TUNED_FAMILIES]
        if unknown:
            raise UserInputError(
                f"unknown strategy famil{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(unknown)}: use {', '.join(TUNED_FAMILIES)}"
            )
        if budget.folds < 2:
            raise UserInputError(f"folds must be at least 2, got {budget.folds}")
        return budget


def _positive(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise UserInputError(f"{name} must be a whole number, got {value!r}") from None
    if not 1 <= number <= 100_000:
        raise UserInputError(f"{name} must be between 1 and 100000, got {number}")
    return number


@dataclass
class StageTime:
    stage: str
    seconds: float
    runs: int
    cpu: float = 0.0  # this process's CPU seconds (the machine's load does not inflate it)


@dataclass
class ChainReport:
    """What the chain did: the runs per stage, and when the stages ended."""

    series: list[str] = field(default_factory=list)
    first_month: str = ""
    last_month: str = ""
    run_ids: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    times: list[StageTime] = field(default_factory=list)
    replay: tuple[str, str] | None = None
    decision_ids: list[int] = field(default_factory=list)
    current: str = ""  # the stage running (or the last one run)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:300]


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step's error message, one line."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            if error is not None:
                cause = error
                while cause.cause is not None and cause.cls_name in (
                    "DagsterExecutionStepExecutionError",
                    "DagsterUserCodeExecutionError",
                ):
                    cause = cause.cause
                step = event.step_key or "?"
                return f"{step}: {_first_line(cause.message)}"
    for event in result.all_events:
        if event.is_failure and event.message:
            return _first_line(event.message)
    return "the run failed"


class Chain:
    """Runs the stages in one instance; ``echo`` gets one progress line per stage/series."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        *,
        location: dg.Definitions | None = None,
        budget: Budget | None = None,
        echo: Callable[[str], None] = print,
        verbose: bool = False,
        today: date | None = None,
        now: datetime | None = None,
        stop: StopSignals | None = None,
        resources: Mapping[str, object] | None = None,
        series_from_fleet: bool = False,
    ):
        self.instance = instance
        self.location = location or _location()
        self.budget = budget or Budget()
        self.echo = echo
        self.verbose = verbose
        self.now = (now or datetime.now(UTC)).astimezone(UTC)
        self.today = today or self.now.date()
        self.stop = stop
        configured = dict(self.location.resources or {})
        configured.update(resources or {})
        self.resources = configured
        source, lake = configured["history_source"], configured["lake"]
        assert isinstance(source, HistorySource) and isinstance(lake, DataLake)
        # the main job runs the configured universe unless asked for every bot's series too
        # (``--series-from-fleet``): a small mirror holds the universe, not ten 5-minute coins.
        # Only the chain's own list of series changes: the runs keep the location's resource
        # (Dagster requires the very object bound to the assets), whose runs never read it.
        if source.fleet_series != series_from_fleet:
            source = source.model_copy(update={"fleet_series": series_from_fleet})
        self.source, self.lake = source, lake
        self.job = self.location.resolve_implicit_global_asset_job_def()
        self.keys = {k.to_user_string(): k for k in self.location.resolve_all_asset_keys()}
        first, last = self._months()
        self.report = ChainReport(
            series=self.source.series_keys(), first_month=first[:7], last_month=last[:7]
        )

    # ---------------------------------------------------------------- plumbing

    def key(self, name: str) -> dg.AssetKey | None:
        """The asset key whose last part is ``name`` (``klines`` → ``history/klines``)."""
        for text, key in self.keys.items():
            if key.path[-1] == name or text == name:
                return key
        return None

    def _keys(self, *names: str) -> list[dg.AssetKey]:
        return [k for n in names if (k := self.key(n)) is not None]

    def materialize(
        self,
        stage: str,
        names: Sequence[str],
        *,
        partition_key: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> tuple[bool, str]:
        """One in-process run of the named assets; (success, failure reason or run id)."""
        keys = self._keys(*names)
        if not keys:
            return True, ""
        config: dict[str, Any] = dict(run_config or {})
        if not self.verbose:
            config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
        # quiet: libraries' own prints to stderr (MLflow's "Registered model …") are dropped;
        # a failure is reported from the run's events instead
        quiet = (
            contextlib.nullcontext() if self.verbose else contextlib.redirect_stderr(io.StringIO())
        )
        try:
            with quiet:
                result = self.job.execute_in_process(
                    run_config=config,
                    instance=self.instance,
                    partition_key=partition_key,
                    asset_selection=keys,
                    tags={TRIGGER_TAG: "main", "trading_pipeline/stage": stage, **(tags or {})},
                    resources=self.resources,
                    raise_on_error=False,
                )
        finally:
            if self.stop is not None:  # Dagster held SIGINT/SIGTERM during the run
                self.stop.restore()
                self.stop.check()
        self.report.run_ids.setdefault(stage, []).append(result.run_id)
        if result.success:
            return True, result.run_id
        return False, failure_reason(result)

    def _timed(self, stage: str, fn: Callable[[], int]) -> None:
        self.report.current = stage
        start, cpu = time.perf_counter(), time.process_time()
        runs = fn()
        self.report.times.append(
            StageTime(stage, time.perf_counter() - start, runs, time.process_time() - cpu)
        )

    # ---------------------------------------------------------------- stages

    def run(self, stages: Sequence[str] = STAGES) -> ChainReport:
        for stage in stages:
            self._timed(stage, getattr(self, f"stage_{stage}"))
        return self.report

    def _months(self) -> tuple[str, str]:
        first = max(self.source.start[:7] + "-01", FIRST_MONTH)
        return first, month_key(self.today)

    def stage_history(self) -> int:
        keys = self.report.series
        name = series_partitions.name or "series"
        known = set(self.instance.get_dynamic_partitions(name))
        if missing := [k for k in keys if k not in known]:
            self.instance.add_dynamic_partitions(name, missing)
        try:
            check_reachable(self.source.listing_url)
        except VisionUnreachable as exc:
            raise ChainFailed(f"{exc}: {MIRROR_HINT}") from None
        first, last = self._months()
        history = self.lake.layout.history_dir
        self.echo(f"history: {len(keys)} series × {first[:7]}…{last[:7]} into {history}")
        failed = []
        for key in keys:
            t0 = time.perf_counter()
            tags = {
                ASSET_PARTITION_RANGE_START_TAG: str(series_month_key(key, first)),
                ASSET_PARTITION_RANGE_END_TAG: str(series_month_key(key, last)),
            }
            ok, why = self.materialize("history", ["raw_zips", "kline_csv", "klines"], tags=tags)
            months = _months_in_store(self.lake, key)
            status = f"{months} months in the store" if ok else f"FAILED: {why}"
            self.echo(f"  history {key}: {status} ({time.perf_counter() - t0:.1f} s)")
            if not ok:
                failed.append(f"{key}: {why}")
        self._require_history(keys, first, last)
        if failed:
            raise ChainFailed("history failed for " + "; ".join(failed))
        return len(keys)

    def _require_history(self, keys: Sequence[str], first: str, last: str) -> None:
        months = month_list(date.fromisoformat(first), date.fromisoformat(last))
        try:
            missing = find_missing(
                self.lake.layout.history,
                [Series.parse(k) for k in keys],
                months,
                listing_url=self.source.listing_url,
            )
        except ListingError as exc:
            raise ChainFailed(f"{_first_line(str(exc))}: {MIRROR_HINT}") from None
        if missing:
            raise ChainFailed(f"missing from the history: {missing.describe()}")

    def _series_range_tags(self, key: str) -> dict[str, str]:
        first, last = self._months()
        return {
            ASSET_PARTITION_RANGE_START_TAG: str(series_month_key(key, first)),
            ASSET_PARTITION_RANGE_END_TAG: str(series_month_key(key, last)),
        }

    def stage_features(self) -> int:
        runs = 0
        for key in self.source.series_keys():
            t0 = time.perf_counter()
            ok, why = self.materialize(
                "features", ["features", "regime_periods"], tags=self._series_range_tags(key)
            )
            runs += 1
            status = "features and regimes" if ok else f"FAILED: {why}"
            self.echo(f"  features {key}: {status} ({time.perf_counter() - t0:.1f} s)")
            if not ok:
                raise ChainFailed(f"features failed for {key}: {why}")
        first, last = self._months()
        if self.key("market_correlation") is not None and len(self.source.universe) > 1:
            t0 = time.perf_counter()
            ok, why = self.materialize(
                "features",
                ["market_correlation"],
                tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            )
            runs += 1
            status = "ok" if ok else f"FAILED: {why}"
            self.echo(f"  features market_correlation: {status} ({time.perf_counter() - t0:.1f} s)")
            if not ok:
                raise ChainFailed(f"market_correlation failed: {why}")
        return runs

    def families_for(self, key: str) -> tuple[str, ...]:
        """The families tuned on series ``key``: the budget's (``TP_MAIN_FAMILIES``); with
        ``--series-from-fleet`` also every family a bot trading the series may run (only those
        on a series the fleet alone brings), so each bot is given strategies tuned on its own
        series."""
        if not self.source.fleet_series:
            return self.budget.families
        # lazy: the fleet file is read only for fleet series
        from trading_pipeline.bots.data_series import families_for_series
        from trading_pipeline.bots.spec import current_fleet

        fleet = families_for_series(Series.parse(key), current_fleet().bots, TUNED_FAMILIES)
        if key not in {s.key for s in self.source.series()}:
            return fleet
        return self.budget.families + tuple(f for f in fleet if f not in self.budget.families)

    def stage_discovery(self) -> int:
        b = self.budget
        self.echo(
            f"discovery: {', '.join(b.families)} × {len(self.source.universe)} series"
            + (
                f" (+ the families of the bots trading each of {len(self.report.series)} series)"
                if self.source.fleet_series
                else ""
            )
            + f", {b.trials} trials × {b.folds} folds each (TP_MAIN_TRIALS, TP_MAIN_FAMILIES)"
        )
        config = {"ops": {"strategy_results": {"config": {"trials": b.trials, "folds": b.folds}}}}
        runs, good = 0, 0
        for key in self.source.series_keys():
            t0 = time.perf_counter()
            done = []
            for family in self.families_for(key):
                ok, why = self.materialize(
                    "discovery",
                    ["strategy_results"],
                    partition_key=str(family_series_key(family, key)),
                    run_config=config,
                )
                runs += 1
                good += ok
                done.append(family if ok else f"{family} FAILED ({why})")
                if not ok:
                    self.report.failures.append(f"discovery {family}|{key}: {why}")
            self.echo(f"  discovery {key}: {', '.join(done)} ({time.perf_counter() - t0:.1f} s)")
        if not good:
            raise ChainFailed("discovery: no study succeeded; " + "; ".join(self.report.failures))
        return runs

    def _one(self, stage: str, names: Sequence[str], **kwargs: Any) -> int:
        t0 = time.perf_counter()
        ok, why = self.materialize(stage, names, **kwargs)
        status = "ok" if ok else f"FAILED: {why}"
        self.echo(f"{stage}: {', '.join(names)} {status} ({time.perf_counter() - t0:.1f} s)")
        if not ok:
            raise ChainFailed(f"{stage} failed: {why}")
        return 1

    def stage_ranking(self) -> int:
        return self._one("ranking", ["performance_matrix", "top_strategies"])

    def stage_selector(self) -> int:
        return self._one("selector", ["selector_training_set", "selector_model"])

    def stage_decision(self) -> int:
        """One decision per bot at now, from the stored bars (as ``select --record`` does):
        the 5-minute sensor reads live candles from the exchange, which an offline run lacks."""
        # lazy: the selector's stack (sklearn, mlflow) loads only when this stage runs
        from trading_pipeline.bots.spec import current_fleet
        from trading_pipeline.market.candles import CandleError
        from trading_pipeline.selector.decide import Decider, open_registry
        from trading_pipeline.selector.decisions import DecisionStore
        from trading_pipeline.selector.live import StoreCandles

        t0 = time.perf_counter()
        layout = self.lake.layout
        decider = Decider(
            open_registry(layout.mlflow_tracking_uri),
            StoreCandles(layout.history_dir),
            DecisionStore(layout.decisions_path),
            fleet=current_fleet().bots,
        )
        try:
            result = decider.tick(self.now, record=True)
        except (CandleError, ValueError) as exc:
            raise ChainFailed(f"decision: {_first_line(str(exc))}") from None
        self.report.decision_ids = [d.id for d in result.decisions if d.id is not None]
        ref = result.model
        model = f"{ref.name} v{ref.version}" if ref.version is not None else "no champion"
        self.echo(
            f"decision: {len(result.decisions)} bots by {model}, changed "
            f"{', '.join(result.changed) or 'none'} ({time.perf_counter() - t0:.1f} s)"
        )
        return 0

    def stage_deploy(self) -> int:
        return self._one("deploy", ["bot_assignments"])

    def stage_replay(self) -> int:
        end = self.today.replace(day=1)
        start = previous_month(self.today)
        self.report.replay = (start.isoformat(), (end - timedelta(days=1)).isoformat())
        config = {
            "ops": {
                "paper_replay_report": {
                    "config": {"from_date": start.isoformat(), "to_date": end.isoformat()}
                }
            }
        }
        return self._one("replay", ["paper_replay_report"], run_config=config)


def _months_in_store(lake: DataLake, series_key: str) -> int:
    s = Series.parse(series_key)
    root = lake.layout.history.parquet_path(s, 2000, 1).parent.parent.parent
    return sum(1 for _ in root.glob("year=*/month=*/data.parquet")) if root.is_dir() else 0


def _location() -> dg.Definitions:
    from trading_pipeline.definitions import defs  # lazy: the location imports every defs module

    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    return loaded
