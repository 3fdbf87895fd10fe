"""Where a bot's parameters come from: the tuning windows of the study that produced them.

A replay over bars a study looked at while tuning (its folds' train windows chose the
parameters, its test windows ranked and selected them) is in-sample for those parameters and
says nothing about how they trade on unseen data. :func:`tuning_windows` finds, for each
assignment, the study group in the Optuna storage whose newest fold chose exactly the
assignment's parameters (same family, symbol and interval) and returns its fold windows as UTC
times; :func:`in_sample` measures how much of a replay period overlaps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from trading_pipeline.bots.spec import CASH
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS
from trading_pipeline.strategies.registry import get_family

if TYPE_CHECKING:
    from trading_pipeline.discovery.catalog import StudyCatalog


@dataclass(frozen=True)
class TuningWindows:
    """A study group and its folds' windows: (``train k`` / ``test k``, start, end), end excluded."""

    study: str
    windows: tuple[tuple[str, datetime, datetime], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "windows": [[k, s.isoformat(), e.isoformat()] for k, s, e in self.windows],
        }


def _merge(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def in_sample(start: datetime, end: datetime, tuned: TuningWindows | None) -> dict[str, Any]:
    """The share of ``[start, end)`` inside the tuning windows, the overlapping periods and the
    study; ``fraction`` is None when no study is known for the parameters."""
    if tuned is None:
        return {
            "fraction": None,
            "periods": [],
            "study": None,
            "note": "no tuning study found for these parameters (a default or hand-set assignment)",
        }
    spans = _merge(
        (max(s, start), min(e, end)) for _, s, e in tuned.windows if s < end and e > start
    )
    covered = sum(((e - s) for s, e in spans), timedelta())
    total = end - start
    return {
        "fraction": covered / total if total > timedelta() else 0.0,
        "periods": [[s.isoformat(), e.isoformat()] for s, e in spans],
        "study": tuned.study,
        "note": "in-sample: the replay overlaps the windows its parameters were tuned and "
        "selected on"
        if spans
        else "out of sample: after (or before) every tuning window",
    }


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = set(a) & set(b)
    return bool(keys) and all(a[k] == b[k] for k in keys) and set(a) == set(b)


def study_windows(catalog: StudyCatalog, group: str) -> TuningWindows | None:
    """The fold windows of ``group`` as UTC times, from the bars it was tuned on."""
    spec = catalog.spec(group)
    bars = catalog._load_bars(spec.series)  # the catalog's own loader (bars as tuned)
    if bars is None or bars.height < spec.n_bars:
        return None
    times = bars.head(spec.n_bars).get_column("open_time").to_list()
    step = timedelta(milliseconds=INTERVAL_MS[spec.interval])
    out: list[tuple[str, datetime, datetime]] = []
    for f in spec.walk.split(spec.n_bars):
        k = f.index + 1
        out.append((f"train {k}", times[f.train_start], times[f.train_stop - 1] + step))
        out.append((f"test {k}", times[f.test_start], times[f.test_stop - 1] + step))
    return TuningWindows(group, tuple(out))


def tuning_windows(
    catalog: StudyCatalog, assignments: Mapping[str, Any]
) -> dict[str, TuningWindows]:
    """Bot → the tuning windows of the study whose newest fold chose the bot's parameters
    (family, series and parameters equal); bots without one are left out."""
    import optuna  # lazy: optuna costs ~1 s and only replays with a storage need it

    try:
        groups = catalog.groups()
    except Exception:  # no storage (nothing tuned yet): no windows, every bot says so
        return {}
    specs = {}
    for g in groups:
        try:
            specs[g] = catalog.spec(g)
        except UserInputError:
            continue
    out: dict[str, TuningWindows] = {}
    for bot, a in assignments.items():
        if a.family == CASH or not a.params:
            continue
        series = {f"spot-{s}-{a.interval}" for s in a.symbols}
        for g, spec in sorted(specs.items()):
            if spec.family != a.family or spec.series not in series:
                continue
            try:
                fam = get_family(spec.family)
                last = f"{g}-wf{spec.walk.folds}of{spec.walk.folds}"
                best = optuna.load_study(study_name=last, storage=catalog.storage).best_params
                if not _same(fam.validate(best), fam.validate(dict(a.params))):
                    continue
                found = study_windows(catalog, g)
            except (ValueError, KeyError, UserInputError):
                continue
            if found is not None:
                out[bot] = found
                break
    return out


__all__ = ["TuningWindows", "in_sample", "study_windows", "tuning_windows"]
