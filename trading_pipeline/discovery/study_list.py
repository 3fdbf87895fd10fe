"""What the Optuna storage holds, for people (freqtrade's ``hyperopt-list`` / ``hyperopt-show``).

A study group is one walk-forward tuning of a family on a series: one Optuna study per fold
(``<group>-wf<k>of<n>``). The numbers here are each fold's **in-sample** objective (the mean
Sharpe over pieces of its train window) — what the sampler maximised, not a performance
figure; the out-of-sample result is what ``tune`` and the performance matrix report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trading_pipeline.discovery.tuning import SPEC_ATTR, TuneSpec
from trading_pipeline.errors import UserInputError

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

FOLD_MARK = "-wf"


def split_fold(study_name: str) -> tuple[str, int, int] | None:
    """``(group, fold, folds)`` of ``<group>-wf<k>of<n>``; ``None`` for any other name."""
    head, sep, tail = study_name.rpartition(FOLD_MARK)
    if not sep or "of" not in tail:
        return None
    k, _, n = tail.partition("of")
    if not (k.isdigit() and n.isdigit()):
        return None
    return head, int(k), int(n)


@dataclass
class GroupSummary:
    group: str
    family: str = "?"
    series: str = "?"
    folds: int = 0
    studies: int = 0
    trials: int = 0
    started: datetime | None = None
    fee: float | None = None
    slippage: float | None = None
    best_in_sample: list[float | None] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "family": self.family,
            "series": self.series,
            "folds": self.folds,
            "studies_present": self.studies,
            "trials": self.trials,
            "started": self.started.isoformat() if self.started else None,
            "fee": self.fee,
            "slippage": self.slippage,
            "best_in_sample_objective_per_fold": self.best_in_sample,
        }


def _summaries(storage: BaseStorage) -> list[Any]:
    import optuna  # lazy: optuna costs ~1 s

    return list(optuna.get_all_study_summaries(storage, include_best_trial=True))


def list_groups(storage: BaseStorage) -> list[GroupSummary]:
    """Every study group in ``storage``, sorted by name."""
    groups: dict[str, GroupSummary] = {}
    for s in _summaries(storage):
        parsed = split_fold(s.study_name)
        if parsed is None:
            continue
        name, fold, folds = parsed
        g = groups.setdefault(name, GroupSummary(group=name, folds=folds))
        g.studies += 1
        g.trials += int(s.n_trials)
        spec = s.user_attrs.get(SPEC_ATTR) or {}
        g.family = str(spec.get("family", g.family))
        g.series = str(spec.get("series", g.series))
        costs = spec.get("costs") or {}
        g.fee = s.user_attrs.get("fee", costs.get("fee", g.fee))
        g.slippage = s.user_attrs.get("slippage", g.slippage)
        if s.datetime_start and (g.started is None or s.datetime_start < g.started):
            g.started = s.datetime_start
        if len(g.best_in_sample) < folds:
            g.best_in_sample.extend([None] * (folds - len(g.best_in_sample)))
        best = s.best_trial.value if s.best_trial is not None else None
        g.best_in_sample[fold - 1] = None if best is None else float(best)
    return [groups[k] for k in sorted(groups)]


@dataclass
class FoldDetail:
    study: str
    fold: int
    trials: int
    complete: int
    train: list[int] | None  # bar indices [start, stop) of the tuned bars
    test: list[int] | None
    top: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "fold": self.fold,
            "trials": self.trials,
            "complete": self.complete,
            "train_window": self.train,
            "test_window": self.test,
            "top_in_sample": self.top,
        }


def show_group(storage: BaseStorage, group: str, *, top: int = 5) -> list[FoldDetail]:
    """Each fold of ``group``: trial counts, its windows and its ``top`` trials by the
    in-sample objective. An unknown group is a :class:`UserInputError` naming close ones."""
    import optuna  # lazy: optuna costs ~1 s

    names = sorted(
        (p[1], s.study_name)
        for s in _summaries(storage)
        if (p := split_fold(s.study_name)) is not None and p[0] == group
    )
    if not names:
        known = sorted({p[0] for s in _summaries(storage) if (p := split_fold(s.study_name))})
        near = [k for k in known if group.split("-")[0] in k][:5]
        hint = f"; known: {', '.join(near or known[:5])}" if known else "; the storage is empty"
        raise UserInputError(f"no study group {group!r} in the storage{hint}")
    out = []
    for fold, name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        windows: dict[str, list[int]] = {}
        spec_doc = study.user_attrs.get(SPEC_ATTR)
        if spec_doc:
            spec = TuneSpec.from_json(spec_doc)
            cut = spec.walk.split(spec.n_bars)[fold - 1]
            windows = {
                "train": [cut.train_start, cut.train_stop],
                "test": [cut.test_start, cut.test_stop],
            }
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        done.sort(key=lambda t: -(t.value if t.value is not None else float("-inf")))
        out.append(
            FoldDetail(
                study=name,
                fold=fold,
                trials=len(trials),
                complete=len(done),
                train=windows.get("train"),
                test=windows.get("test"),
                top=[
                    {"trial": t.number, "in_sample_objective": t.value, "params": t.params}
                    for t in done[:top]
                ],
            )
        )
    return out
