"""Train the selector honestly: choose on purged CV, judge once on a held-out period, gate.

1. The last ``holdout_fraction`` of the decision rows is the held-out period; development
   rows whose label window reaches into it are purged (:func:`~.cv.holdout_split`). The
   candidates were chosen on returns before the dataset's ``candidate_cutoff``; should the
   held-out period start earlier (a larger fraction than the dataset was built for, or rows
   the fleet-wide coverage lacked), it starts at the cut-off instead (:func:`split_rows`).
2. Each model configuration is scored by walk-forward purged, embargoed CV on the
   development rows (:func:`~.cv.purged_splits`, ``forward_only``): the policy "follow the
   choice of each decision rule (most probable candidate, or highest expected return from
   the calibrated probabilities, see :class:`~.model.SelectorModel`) is followed on each test
   block with switching costs; the (configuration, rule) with the best mean net return wins
   (log loss breaks ties).
3. The chosen configuration is refitted on all development rows and scored on the held-out
   rows, beside every baseline (:mod:`.baselines`) on the very same rows.
4. Registration: the current champion (if any) is re-scored on these held-out rows and
   :func:`~.registry.register_gated` lets the promotion gate decide; the comparison lands on
   the new version's tags. With MLflow, the registration's run also gets the baselines'
   metrics, the data partitions and studies, the confusion matrix and the comparison table,
   a description (what it is, out of sample), the development and held-out rows as dataset
   inputs (``training``/``evaluation``), and each registered version's description holds the
   held-out comparison and which policy is champion and why (:func:`version_description`).
"""

from __future__ import annotations

import io
import json
import math
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trading_pipeline.errors import UserInputError
from trading_pipeline.selector import baselines as bl
from trading_pipeline.selector.cv import holdout_split, purged_splits
from trading_pipeline.selector.dataset import (
    DEFAULT_HOLDOUT_FRACTION,
    SelectorDataset,
    _every_delta,
    follow,
)
from trading_pipeline.selector.model import (
    DEFAULT_CONFIGS,
    MODEL_NAME,
    ModelConfig,
    SelectorModel,
    fit_calibrated,
)
from trading_pipeline.selector.policy import BaselinePolicy
from trading_pipeline.selector.registry import (
    DEFAULT_METRIC,
    GateDecision,
    ModelRegistry,
    register_gated,
)
from trading_pipeline.selector.state import STATE_WARMUP_BARS
from trading_pipeline.tracking import NOTE_TAG, log_frame_input

MODEL = "selector"
METRIC_KEYS = ("net_return", "sharpe", "hit_rate", "positive_rate", "max_drawdown", "switches")


@dataclass(frozen=True)
class TrainSettings:
    """How the selector is chosen and judged."""

    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
    n_splits: int = 4
    embargo: int = 2  # decision rows dropped after each CV test block
    configs: tuple[ModelConfig, ...] = DEFAULT_CONFIGS
    rules: tuple[str, ...] = ("argmax", "expected_return")
    seed: int = 0
    min_improvement: float = 0.0
    name: str = MODEL_NAME

    def to_params(self) -> dict[str, Any]:
        return {
            "holdout_fraction": self.holdout_fraction,
            "cv_splits": self.n_splits,
            "cv_embargo_rows": self.embargo,
            "cv": "purged, embargoed, walk-forward (forward_only)",
            "configs": ", ".join(c.label for c in self.configs),
            "decision_rules": ", ".join(self.rules),
            "seed": self.seed,
            "gate_min_improvement": self.min_improvement,
        }


@dataclass
class TrainReport:
    """Everything one training produced (the model, its numbers, and where it was registered)."""

    model: SelectorModel
    config: ModelConfig
    cv: list[dict[str, Any]]
    holdout: dict[str, dict[str, float]]  # policy → metrics, on the held-out rows
    holdout_start: str
    holdout_end: str
    n_development: int
    n_holdout: int
    confusion: tuple[list[str], np.ndarray]
    version: int | None = None
    gate: GateDecision | None = None
    run_id: str | None = None
    champion: dict[str, float] | None = None
    champion_rescored: bool = False
    dataset: dict[str, Any] = field(default_factory=dict)
    best_baseline: str | None = None  # the best baseline on the held-out rows
    policy_version: int | None = None  # a baseline policy registered because the model lost
    policy_name: str | None = None  # that policy's row in ``holdout`` (a deployable baseline)
    policy_gate: GateDecision | None = None

    @property
    def beats_baselines(self) -> bool:
        """The model's held-out net return is above every baseline's (ties lose)."""
        model = self.holdout[MODEL]["net_return"]
        return all(model > m["net_return"] for k, m in self.holdout.items() if k != MODEL)

    @property
    def metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow: ``heldout_*`` for the model, ``baseline.<name>.*``, and
        ``vs.<name>.net_return`` (model minus baseline)."""
        model = self.holdout[MODEL]
        out = {f"heldout_{k}": v for k, v in model.items()}
        for name, m in self.holdout.items():
            if name == MODEL:
                continue
            key = _metric_name(name)
            out.update({f"baseline.{key}.{k}": v for k, v in m.items()})
            out[f"vs.{key}.net_return"] = model["net_return"] - m["net_return"]
        for row in self.cv:
            key = _metric_name(row["config"])
            out[f"cv.{key}.net_return"] = row["net_return"]
            out[f"cv.{key}.log_loss"] = row["log_loss"]
        return out

    def comparison_rows(self) -> list[tuple[Any, ...]]:
        """(policy, net return, Sharpe, hit rate, positive share, max drawdown, switches,
        log loss, Brier) for the comparison table."""
        rows = []
        for name, m in self.holdout.items():
            rows.append(
                (
                    name,
                    m.get("net_return"),
                    m.get("sharpe"),
                    m.get("hit_rate"),
                    m.get("positive_rate"),
                    m.get("max_drawdown"),
                    m.get("switches"),
                    m.get("log_loss"),
                    m.get("brier"),
                )
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.model.info.get("name", MODEL_NAME),
            "version": self.version,
            "run_id": self.run_id,
            "config": self.config.label,
            "decision_rule": self.model.decision_rule,
            "holdout": {"start": self.holdout_start, "end": self.holdout_end},
            "rows": {"development": self.n_development, "holdout": self.n_holdout},
            "comparison": self.holdout,
            "cv": self.cv,
            "gate": None
            if self.gate is None
            else {
                "promote": self.gate.promote,
                "reason": self.gate.reason,
                "comparison": self.gate.comparison,
            },
            "champion_rescored": self.champion_rescored,
            "beats_baselines": self.beats_baselines,
            "best_baseline": self.best_baseline,
            "policy_version": self.policy_version,
            "policy": self.policy_name,
            "policy_gate": None
            if self.policy_gate is None
            else {"promote": self.policy_gate.promote, "reason": self.policy_gate.reason},
            "candidates": list(self.model.candidate_ids),
            "dataset": self.dataset,
        }


COMPARISON_HEADER = (
    "policy",
    "net return",
    "Sharpe",
    "hit rate",
    "positive windows",
    "max drawdown",
    "switches",
    "log loss",
    "Brier",
)


def _metric_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def periods_per_year(every: str) -> float:
    return timedelta(days=365) / _every_delta(every)


def regret_weights(returns: np.ndarray) -> np.ndarray:
    """Per row, what picking blindly costs: the best window return minus the average one
    (log terms), normalised to mean 1. Days when the choice hardly matters weigh little, so
    the classifier spends its capacity on the days that move the result."""
    logr = np.log1p(returns)
    regret = logr.max(axis=1) - logr.mean(axis=1)
    mean = float(regret.mean())
    return regret / mean if mean > 0 else np.ones(len(regret))


def outcome_table(ds: SelectorDataset, rows: np.ndarray) -> np.ndarray:
    """Row ``k``: every candidate's mean window return on the ``rows`` whose best was ``k``
    (all rows' mean where ``k`` never was the best; its probability is then 0 anyway)."""
    labels, r = ds.labels[rows], ds.returns[rows]
    table = np.tile(r.mean(axis=0), (len(ds.candidates), 1))
    for k in np.unique(labels):
        table[k] = r[labels == k].mean(axis=0)
    return table


def fit_model(
    ds: SelectorDataset,
    rows: np.ndarray,
    config: ModelConfig,
    *,
    seed: int = 0,
    info: Any = None,
    rule: str = "expected_return",
) -> SelectorModel:
    """Fit ``config`` on ``rows`` (in time order) and wrap it as a :class:`SelectorModel`."""
    ids = np.array([c.id for c in ds.candidates], dtype=object)
    y = ids[ds.labels[rows]]
    weight = regret_weights(ds.returns[rows]) if config.weighting == "regret" else None
    estimator = fit_calibrated(ds.x(rows), y, config, seed=seed, sample_weight=weight)
    return SelectorModel(
        estimator,
        candidates=ds.candidates,
        feature_names=ds.feature_names,
        series=ds.series,
        interval=ds.interval,
        warmup_bars=STATE_WARMUP_BARS,
        decision_every=ds.every,
        info=dict(info or {}),
        outcome=outcome_table(ds, rows),
        decision_rule=rule,
    )


def _score(
    ds: SelectorDataset, proba: np.ndarray, rows: np.ndarray, choices: np.ndarray, start: int = 0
) -> dict[str, float]:
    net = follow(choices, ds.returns[rows], ds.switch_cost, start=start)
    labels = ds.labels[rows]
    out = bl.policy_metrics(
        net, periods_per_year=periods_per_year(ds.every), choices=choices, labels=labels
    )
    out.update(bl.probability_metrics(proba, labels))
    return out


def cross_validate(
    ds: SelectorDataset, dev: np.ndarray, settings: TrainSettings
) -> list[dict[str, Any]]:
    """Each configuration's mean net return and log loss over purged walk-forward test blocks."""
    t, end = ds.decision_times[dev], ds.label_ends[dev]
    splits = purged_splits(t, end, settings.n_splits, settings.embargo, forward_only=True)
    out = []
    for ci, config in enumerate(settings.configs):
        nets: dict[str, list[float]] = {rule: [] for rule in settings.rules}
        losses = []
        for train_i, test_i in splits:
            model = fit_model(ds, dev[train_i], config, seed=settings.seed)
            x = ds.x(dev[test_i])
            proba = model.proba_matrix(x)
            for rule in settings.rules:
                s = _score(ds, proba, dev[test_i], model.choose_index(x, rule=rule))
                nets[rule].append(math.log1p(s["net_return"]))
            losses.append(s["log_loss"])
        for rule in settings.rules:
            out.append(
                {
                    "config": f"{config.label} / {rule}",
                    "config_index": ci,
                    "rule": rule,
                    "net_return": float(math.expm1(np.mean(nets[rule]))),
                    "log_loss": float(np.mean(losses)),
                    "splits": len(splits),
                }
            )
    return out


def evaluate(
    ds: SelectorDataset, model: SelectorModel, dev: np.ndarray, hold: np.ndarray
) -> dict[str, dict[str, float]]:
    """The model and every baseline on the held-out rows (baselines learned on ``dev``)."""
    ppy = periods_per_year(ds.every)
    labels = ds.labels[hold]
    k = len(ds.candidates)
    x = ds.x(hold)
    res = {MODEL: _score(ds, model.proba_matrix(x), hold, model.choose_index(x))}

    def policy(choices: np.ndarray) -> dict[str, float]:
        net = follow(choices, ds.returns[hold], ds.switch_cost)
        m = bl.policy_metrics(net, periods_per_year=ppy, choices=choices, labels=labels)
        m["brier"] = bl.probability_metrics(bl.onehot(choices, k), labels)["brier"]
        return m

    best = bl.single_best(ds.returns[dev], ds.switch_cost)
    res[f"single_best ({ds.candidates[best].id})"] = policy(np.full(len(hold), best))
    table = bl.regime_table(ds.returns[dev], ds.regimes[dev])
    res["regime_lookup"] = policy(bl.regime_lookup(table, ds.regimes[hold]))
    res["cash"] = policy(np.zeros(len(hold), dtype=np.int64))
    prior = np.bincount(ds.labels[dev], minlength=k) / len(dev)
    res["cash"].update(
        {
            f"prior_{m}": v
            for m, v in bl.probability_metrics(np.tile(prior, (len(hold), 1)), labels).items()
        }
    )
    bh = [ds.bh[s][hold] for s in sorted(ds.bh)]
    for s, r in zip(sorted(ds.bh), bh, strict=True):
        res[f"buy_and_hold ({s})"] = bl.policy_metrics(r, periods_per_year=ppy)
    if len(bh) > 1:
        res["buy_and_hold (equal parts)"] = bl.policy_metrics(
            np.mean(np.vstack(bh), axis=0), periods_per_year=ppy
        )
    return res


def rescore(ds: SelectorDataset, model: Any, hold: np.ndarray) -> dict[str, float] | None:
    """A (champion) model's metrics on these held-out rows, or None when it cannot be run on
    them (not a SelectorModel, or it needs features this dataset lacks). Its choices map to
    this dataset's candidates by id; a candidate it knows and this dataset lacks counts as cash."""
    if isinstance(model, BaselinePolicy):
        ids = [c.id for c in ds.candidates]
        choices = model.choices_on(ids, ds.regimes[hold])
        m = _score(ds, bl.onehot(choices, len(ids)), hold, choices)
        return {f"heldout_{k}": v for k, v in m.items()}
    if not isinstance(model, SelectorModel):
        return None
    if any(f not in ds.feature_names for f in model.feature_names):
        return None
    x = pd.DataFrame(ds.x(hold), columns=list(ds.feature_names))
    theirs = model.proba_matrix(x)
    ids = [c.id for c in ds.candidates]
    to_ours = np.array([ids.index(c.id) if c.id in ids else 0 for c in model.candidates])
    proba = np.zeros((len(hold), len(ids)))
    for j, ours in enumerate(to_ours):
        proba[:, ours] += theirs[:, j]
    m = _score(ds, proba, hold, to_ours[model.choose_index(x)])
    return {f"heldout_{k}": v for k, v in m.items()}


def confusion(
    ds: SelectorDataset, model: SelectorModel, hold: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Rows: the window's best candidate; columns: the model's choice (held-out rows)."""
    k = len(ds.candidates)
    m = np.zeros((k, k), dtype=np.int64)
    for true, pred in zip(ds.labels[hold], model.choose_index(ds.x(hold)), strict=True):
        m[true, pred] += 1
    return [c.id for c in ds.candidates], m


def confusion_png(labels: Sequence[str], matrix: np.ndarray) -> bytes:
    """The confusion matrix as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(labels)
    fig, ax = plt.subplots(figsize=(0.9 * k + 3, 0.7 * k + 2), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), labels, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    ax.set_xlabel("chosen by the model")
    ax.set_ylabel("best over the window")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7)
    ax.set_title("held-out decisions")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def comparison_markdown(report: TrainReport) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4f}"
        return str(v)

    lines = [
        "| " + " | ".join(COMPARISON_HEADER) + " |",
        "|" + "---|" * len(COMPARISON_HEADER),
    ]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in report.comparison_rows()]
    return "\n".join(lines)


def run_description(report: TrainReport, ds: SelectorDataset, settings: TrainSettings) -> str:
    """The training run's description (Markdown): what was fitted on what, how it was judged."""
    return "\n".join(
        [
            f"**Selector training**: {report.config.label} ({report.model.decision_rule}) picks "
            f"one of {len(ds.candidates)} candidates (best study per family × series a bot may "
            f"run, plus cash) every {ds.every} from the market state ({len(ds.feature_names)} "
            "features from closed bars).",
            "",
            f"Chosen by purged, embargoed walk-forward CV ({settings.n_splits} splits, "
            f"{settings.embargo} rows embargo) on {report.n_development} development rows; "
            f"judged once on {report.n_holdout} held-out rows ({report.holdout_start} .. "
            f"{report.holdout_end}) beside every baseline, net of switching costs "
            f"({ds.switch_cost:.4%} per side moved).",
            "",
            "`heldout_*`, `baseline.*` and `vs.*` metrics are **out of sample**; `cv.*` are "
            "development-only. Dataset inputs: the development rows (training) and the held-out "
            "rows (evaluation).",
        ]
    )


def version_description(report: TrainReport, *, policy: bool = False) -> str:
    """A registered version's description (Markdown): the held-out comparison (the selector
    beside every baseline, net of switching costs) and which policy is champion and why."""

    def pct(v: Any) -> str:
        return "" if v is None or not math.isfinite(float(v)) else f"{float(v):+.2%}"

    def num(v: Any, spec: str = ".2f") -> str:
        return "" if v is None or not math.isfinite(float(v)) else format(float(v), spec)

    model_net = report.holdout[MODEL]["net_return"]
    head = ("policy", "net return", "Sharpe", "max drawdown", "switches", "selector − policy")
    lines = [
        f"**Held-out comparison**, {report.holdout_start} .. {report.holdout_end} "
        f"({report.n_holdout} decision rows never used to fit or choose), net of switching "
        "costs:",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    ranked = sorted(report.holdout.items(), key=lambda kv: -kv[1]["net_return"])
    for name, m in ranked:
        mark = f"**{name}**" if name in (MODEL, report.policy_name) else name
        diff = "" if name == MODEL else pct(model_net - m["net_return"])
        row = (mark, pct(m.get("net_return")), num(m.get("sharpe")),
               pct(m.get("max_drawdown")), num(m.get("switches"), ".0f"), diff)  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", _verdict(report, policy=policy)]
    return "\n".join(lines)


def _verdict(report: TrainReport, *, policy: bool) -> str:
    gate = report.policy_gate if policy else report.gate
    what = f"baseline policy `{report.policy_name}`" if policy else "the selector model"
    if policy:
        why = (
            f"registered because the selector lost to `{report.best_baseline}` on the held-out "
            "rows; it is the best baseline a bot can follow."
        )
    elif report.beats_baselines:
        why = "it beats every baseline on the held-out rows."
    else:
        why = (
            f"it loses to `{report.best_baseline}` on the held-out rows, so it is kept for the "
            "record and never becomes champion"
            + (f" (baseline policy registered as v{report.policy_version})." if
               report.policy_version else ".")
        )  # fmt: skip
    if gate is None:
        return f"**Champion**: not decided. This version is {what}: {why}"
    verdict = "this version is champion" if gate.promote else "this version is not champion"
    champ = gate.comparison.get("champion_version")
    if not gate.promote and champ is not None:
        verdict += f" (v{champ} stays)"
    return f"**Champion**: {verdict}. This version is {what}: {why} Gate: {gate.reason}."


def split_rows(ds: SelectorDataset, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Development and held-out rows: :func:`~.cv.holdout_split`, except that the held-out
    period never starts before the dataset's ``candidate_cutoff`` (the candidates were
    chosen with the returns before it, so a held-out row before it would not be unseen).
    Development rows whose label window reaches the held-out start are purged either way."""
    t, end = ds.decision_times, ds.label_ends
    dev, hold = holdout_split(ds.n, fraction, decision_times=t, label_ends=end)
    cutoff = ds.candidate_cutoff
    if cutoff is None:
        return dev, hold
    after = (ds.frame.get_column("decision_time") >= cutoff).to_numpy()
    k = int(np.argmax(after)) if after.any() else ds.n
    if k <= int(hold[0]):
        return dev, hold
    if k >= ds.n:
        raise ValueError(f"the candidates were chosen on every decision row (cut-off {cutoff})")
    rows = np.arange(ds.n, dtype=np.int64)
    dev = rows[:k][end[:k] < t[k]]
    if dev.size == 0:
        raise ValueError("no development row precedes the candidates' cut-off")
    return dev, rows[k:]


def fit_and_evaluate(ds: SelectorDataset, settings: TrainSettings | None = None) -> TrainReport:
    """Steps 1–3 of the module docstring (no registry)."""
    settings = settings or TrainSettings()
    if ds.n < 4 * settings.n_splits:
        raise UserInputError(f"{ds.n} decision rows are too few to train and judge a selector")
    if len(set(ds.labels.tolist())) < 2:
        raise UserInputError("every decision row has the same best candidate: nothing to learn")
    try:
        dev, hold = split_rows(ds, settings.holdout_fraction)
        cv = cross_validate(ds, dev, settings)
    except ValueError as exc:
        raise UserInputError(f"cannot split the decision rows: {exc}") from exc
    best = max(cv, key=lambda r: (r["net_return"], -r["log_loss"]))
    config, rule = settings.configs[best["config_index"]], str(best["rule"])
    times = ds.frame.get_column("decision_time")
    info: dict[str, Any] = {
        "name": settings.name,
        "config": config.label,
        "decision_rule": rule,
        "development": [str(times[int(dev[0])]), str(times[int(dev[-1])])],
        "holdout": [str(times[int(hold[0])]), str(times[int(hold[-1])])],
        "studies": dict(ds.studies),
        "candidate_cutoff": ds.selection.get("cutoff"),
    }
    model = fit_model(ds, dev, config, seed=settings.seed, info=info, rule=rule)
    return TrainReport(
        model=model,
        config=config,
        cv=cv,
        holdout=evaluate(ds, model, dev, hold),
        holdout_start=info["holdout"][0],
        holdout_end=str(ds.frame.get_column("label_end")[int(hold[-1])]),
        n_development=len(dev),
        n_holdout=len(hold),
        confusion=confusion(ds, model, hold),
        dataset=ds.summary(),
    )


DEPLOYABLE_BASELINES = ("single_best", "regime_lookup", "cash")


def baseline_policy(
    ds: SelectorDataset, dev: np.ndarray, report: TrainReport
) -> tuple[BaselinePolicy, str]:
    """The best baseline on the held-out rows that a bot can follow (buy-and-hold of a series or
    of a basket is a benchmark, not a candidate), as a policy, and its name in the report."""
    names = [k for k in report.holdout if k.split(" ")[0] in DEPLOYABLE_BASELINES]
    name = max(names, key=lambda k: report.holdout[k]["net_return"])
    kind = name.split(" ")[0]
    common: dict[str, Any] = {
        "candidates": ds.candidates,
        "series": ds.series,
        "interval": ds.interval,
        "warmup_bars": report.model.warmup_bars,
        "decision_every": ds.every,
        "info": {"holdout": [report.holdout_start, report.holdout_end], "beaten": MODEL},
    }
    if kind == "single_best":
        best = bl.single_best(ds.returns[dev], ds.switch_cost)
        return BaselinePolicy(kind, choice=ds.candidates[best].id, **common), name
    if kind == "regime_lookup":
        table = bl.regime_table(ds.returns[dev], ds.regimes[dev])
        scores = {f"{ds.candidates[j].id}|{regime}": v for (j, regime), v in table.items()}
        return BaselinePolicy(kind, regime_scores=scores, **common), name
    return BaselinePolicy("cash", **common), name


def _register_refused(
    registry: ModelRegistry,
    report: TrainReport,
    settings: TrainSettings,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    example: pd.DataFrame,
) -> tuple[int, GateDecision]:
    """Register a model that lost to a baseline, with the refusal on its tags; no promotion."""
    best = report.best_baseline or "cash"
    model_net = report.holdout[MODEL]["net_return"]
    base_net = report.holdout[best]["net_return"]
    decision = GateDecision(
        False,
        f"loses to the baseline {best} on the held-out rows: net return {model_net:+.4f} "
        f"vs {base_net:+.4f}",
        {"metric": "heldout_net_return", "candidate": model_net, "best_baseline": best,
         "best_baseline_value": base_net},
    )  # fmt: skip
    version = registry.register(
        report.model,
        name=settings.name,
        metrics=report.metrics,
        params=params,
        tags=tags,
        input_example=example,
    )
    registry.annotate(settings.name, version, decision.as_tags())
    return version, decision


def train(
    ds: SelectorDataset,
    *,
    registry: ModelRegistry | None = None,
    settings: TrainSettings | None = None,
    tags: Mapping[str, str] | None = None,
    dataset_source: str | Path | None = None,
) -> TrainReport:
    """Fit, judge, and (with a registry) register behind the promotion gate.

    ``dataset_source`` is where the training set was read from (the selector folder), named as
    the source of the MLflow dataset inputs."""
    settings = settings or TrainSettings()
    report = fit_and_evaluate(ds, settings)
    if registry is None:
        return report
    _, hold = split_rows(ds, settings.holdout_fraction)
    champion_metrics: dict[str, float] | None = None
    current = registry.champion(settings.name)
    if current is not None:
        try:
            champion_metrics = rescore(ds, registry.load(settings.name), hold)
        except Exception:  # an unloadable champion is judged by its registered numbers
            champion_metrics = None
        report.champion_rescored = champion_metrics is not None
        report.champion = champion_metrics if champion_metrics is not None else current[1]
    params = {
        **settings.to_params(),
        **report.config.to_params(),
        "chosen_config": report.config.label,
        "decision_rule": report.model.decision_rule,
        "candidates": ", ".join(report.model.candidate_ids),
        "series": ", ".join(ds.series),
        "interval": ds.interval,
        "decision_every": ds.every,
        "switch_cost_per_side": ds.switch_cost,
        "features": len(ds.feature_names),
        "rows_development": report.n_development,
        "rows_holdout": report.n_holdout,
        "holdout_start": report.holdout_start,
        "holdout_end": report.holdout_end,
        "studies": json.dumps(ds.studies, sort_keys=True),
        "candidate_selection": str(ds.selection.get("rule", "not recorded")),
        "candidate_cutoff": str(ds.selection.get("cutoff", "not recorded")),
        "candidate_selection_holdout_fraction": ds.selection.get("holdout_fraction", ""),
        "data_partitions": json.dumps(ds.provenance.get("partitions", []), default=str),
    }
    run_tags = {
        "selector.holdout": f"{report.holdout_start}..{report.holdout_end}",
        "selector.champion_rescored": str(report.champion_rescored).lower(),
        NOTE_TAG: run_description(report, ds, settings),
        **dict(tags or {}),
    }
    example = pd.DataFrame(ds.x(hold[:5]), columns=list(ds.feature_names))
    report.best_baseline = max(
        (k for k in report.holdout if k != MODEL),
        key=lambda k: report.holdout[k]["net_return"],
    )
    if report.beats_baselines:
        version, gate = register_gated(
            registry,
            report.model,
            name=settings.name,
            metrics=report.metrics,
            champion_metrics=champion_metrics,
            params=params,
            tags=run_tags,
            input_example=example,
            metric=DEFAULT_METRIC,
            min_improvement=settings.min_improvement,
        )
    else:  # kept for the record, never champion; the best deployable baseline stands instead
        version, gate = _register_refused(registry, report, settings, params, run_tags, example)
        dev, _ = split_rows(ds, settings.holdout_fraction)
        policy, policy_name = baseline_policy(ds, dev, report)
        report.policy_name = policy_name
        policy_metrics = {f"heldout_{k}": v for k, v in report.holdout[policy_name].items()}
        report.policy_version, report.policy_gate = register_gated(
            registry,
            policy,
            name=settings.name,
            metrics=policy_metrics,
            champion_metrics=champion_metrics,
            params={**params, "policy": f"baseline:{policy.kind}", "policy_choice": policy.choice},
            tags={
                **run_tags,
                "policy": f"baseline:{policy.kind}",
                NOTE_TAG: f"**Baseline policy** `{policy_name}` ({policy.kind}), registered "
                "because the selector lost to a baseline on the held-out rows.\n\n"
                + run_tags[NOTE_TAG],
            },
            metric=DEFAULT_METRIC,
            min_improvement=settings.min_improvement,
        )
        registry.annotate(
            settings.name,
            report.policy_version,
            {"policy": f"baseline:{policy.kind}", "policy.choice": policy.choice},
        )
    report.version, report.gate = version, gate
    report.model.info["version"] = version
    client = getattr(registry, "client", None)
    if client is not None:  # MLflow: the registration's run gets the evidence as artifacts
        run_id = client.get_model_version(settings.name, str(version)).run_id
        report.run_id = run_id
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "confusion_matrix.png").write_bytes(confusion_png(*report.confusion))
            (folder / "comparison.md").write_text(comparison_markdown(report))
            (folder / "selector_report.json").write_text(
                json.dumps(report.to_json(), indent=1, default=str)
            )
            for p in sorted(folder.iterdir()):
                client.log_artifact(run_id, str(p))
        for key, value in gate.as_tags().items():
            client.set_tag(run_id, key, value[:5000])
        source = str(dataset_source or ds.provenance.get("top_file") or "selector training set")
        dev, _ = split_rows(ds, settings.holdout_fraction)
        runs = {run_id}
        if report.policy_version is not None:
            runs.add(client.get_model_version(settings.name, str(report.policy_version)).run_id)
        for rid in sorted(runs):
            for rows, label, context in ((dev, "development", "training"),
                                         (hold, "holdout", "evaluation")):  # fmt: skip
                frame = ds.frame[rows.tolist()]
                name = f"selector-rows-{label}"
                log_frame_input(client, rid, frame, name=name, source=source, context=context)
    registry.describe(settings.name, version, version_description(report))
    if report.policy_version is not None:
        registry.describe(
            settings.name, report.policy_version, version_description(report, policy=True)
        )
    return report
