"""Training end to end: baselines on the same held-out rows, a real MLflow SQLite store with the
run's signature and metrics, and the promotion gate refusing a worse model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.neighbors import KNeighborsClassifier

from trading_pipeline.bots.spec import FLEET
from trading_pipeline.selector.cv import holdout_split
from trading_pipeline.selector.dataset import SelectorDataset, build_dataset
from trading_pipeline.selector.model import DEFAULT_CONFIGS, MODEL_NAME, SelectorModel
from trading_pipeline.selector.policy import BaselinePolicy
from trading_pipeline.selector.registry import CHAMPION, MlflowRegistry, register_gated
from trading_pipeline.selector.state import STATE_WARMUP_BARS
from trading_pipeline.selector.train import (
    MODEL,
    TrainSettings,
    fit_and_evaluate,
    rescore,
    split_rows,
    train,
)
from trading_pipeline.tracking import default_tracking_uri
from trading_pipeline_tests.selector.helpers import candidates, market

pytestmark = pytest.mark.slow  # an MLflow store

FAST = TrainSettings(configs=(DEFAULT_CONFIGS[0], DEFAULT_CONFIGS[1]))


@pytest.fixture(scope="module")
def ds() -> SelectorDataset:
    bars = market(n_bars=24 * 130, seed=21)
    return build_dataset(candidates(bars), bars, fleet=FLEET)


@pytest.fixture
def registry(tmp_path: Path) -> MlflowRegistry:
    return MlflowRegistry(default_tracking_uri(tmp_path / "data"), "strategy-selector")


def test_model_and_baselines_on_the_same_held_out_rows(ds: SelectorDataset) -> None:
    report = fit_and_evaluate(ds, FAST)
    dev, hold = holdout_split(
        ds.n, FAST.holdout_fraction, decision_times=ds.decision_times, label_ends=ds.label_ends
    )
    assert report.n_holdout == len(hold) and report.n_development == len(dev)
    names = set(report.holdout)
    assert {MODEL, "regime_lookup", "cash", "buy_and_hold (equal parts)"} <= names
    assert any(n.startswith("single_best (") for n in names)
    assert all(m["rows"] == len(hold) for m in report.holdout.values())
    assert report.holdout["cash"]["net_return"] == 0.0
    bh = np.mean([ds.bh[s][hold] for s in sorted(ds.bh)], axis=0)
    assert report.holdout["buy_and_hold (equal parts)"]["net_return"] == pytest.approx(
        float(np.prod(1 + bh) - 1)
    )
    m = report.holdout[MODEL]
    assert 0.0 <= m["hit_rate"] <= 1.0 and m["log_loss"] > 0 and 0 <= m["brier"] <= 2
    assert report.metrics["heldout_net_return"] == m["net_return"]
    assert report.metrics["vs.cash.net_return"] == m["net_return"]
    labels, matrix = report.confusion
    assert labels == [c.id for c in ds.candidates] and matrix.sum() == len(hold)
    assert [r["config"] for r in report.cv] == [
        f"{c.label} / {rule}" for c in FAST.configs for rule in FAST.rules
    ]
    assert report.model.decision_rule in FAST.rules
    # the model's held-out choices are the ones its decision rule makes
    x = ds.x(hold)
    assert report.model.outcome is not None
    expected = np.argmax(report.model.proba_matrix(x) @ report.model.outcome, axis=1)
    chosen = report.model.choose_index(x)
    if report.model.decision_rule == "expected_return":
        assert (chosen == expected).all()
    else:
        assert (chosen == np.argmax(report.model.proba_matrix(x), axis=1)).all()
    assert pl.Series(report.model.info["holdout"]).str.len_chars().min() > 0
    # the held-out rows come after every development row's label window
    assert ds.label_ends[dev].max() < ds.decision_times[hold].min()


def test_training_is_an_mlflow_run_with_signature_metrics_and_evidence(
    ds: SelectorDataset, registry: MlflowRegistry
) -> None:
    import mlflow

    report = train(ds, registry=registry, settings=FAST, tags={"trigger": "test"})
    # on this data the model loses to a baseline: registered for the record, never champion
    assert not report.beats_baselines
    assert report.version == 1 and report.gate is not None and not report.gate.promote
    assert f"loses to the baseline {report.best_baseline}" in report.gate.reason
    run = registry.client.get_run(report.run_id)  # type: ignore[arg-type]
    metrics = run.data.metrics
    assert metrics["heldout_net_return"] == pytest.approx(report.holdout[MODEL]["net_return"])
    assert "baseline.cash.net_return" in metrics and "vs.regime_lookup.net_return" in metrics
    assert "heldout_log_loss" in metrics and "heldout_brier" in metrics
    params = run.data.params
    assert "sma_cross-v1-spot-BTCUSDT-1h" in params["studies"]
    assert params["holdout_start"] == report.holdout_start
    assert params["candidate_cutoff"] == ds.selection["cutoff"]
    assert "before the held-out cut-off" in params["candidate_selection"]
    assert run.data.tags["code_version"] and run.data.tags["trigger"] == "test"
    assert run.data.tags["gate.promote"] == "false"
    assert "out of sample" in run.data.tags["mlflow.note.content"]
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    exp = registry.client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    inputs = {
        {t.key: t.value for t in i.tags}["mlflow.data.context"]: i.dataset
        for i in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "evaluation"}
    assert json.loads(inputs["training"].profile)["num_rows"] == report.n_development
    assert json.loads(inputs["evaluation"].profile)["num_rows"] == report.n_holdout
    assert "label" in inputs["training"].schema and inputs["training"].digest
    # the held-out comparison and the verdict are the versions' descriptions
    model_doc = registry.client.get_model_version(MODEL_NAME, "1").description
    policy_doc = registry.client.get_model_version(MODEL_NAME, "2").description
    for doc in (model_doc, policy_doc):
        assert "| policy | net return |" in doc and "switching" in doc
        for name in report.holdout:
            assert name in doc  # every baseline beside the selector
    assert "not champion" in model_doc and f"loses to `{report.best_baseline}`" in model_doc
    assert "this version is champion" in policy_doc and "no champion yet" in policy_doc
    artifacts = {a.path for a in registry.client.list_artifacts(report.run_id)}
    assert {"confusion_matrix.png", "comparison.md", "selector_report.json"} <= artifacts
    with registry._fluent():
        info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/1")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == list(ds.feature_names)
    assert info.saved_input_example_info is not None
    tags = registry.client.get_model_version(MODEL_NAME, "1").tags
    assert tags["gate.promote"] == "false" and tags["gate.best_baseline"] == report.best_baseline
    # the best baseline a bot can follow is the champion instead, registered as a policy
    assert report.policy_version == 2 and report.policy_gate is not None
    assert report.policy_gate.promote and report.policy_gate.reason == "no champion yet"
    policy_tags = registry.client.get_model_version(MODEL_NAME, "2").tags
    loaded = registry.load(MODEL_NAME)
    assert isinstance(loaded, BaselinePolicy) and loaded.candidates == ds.candidates
    assert policy_tags["policy"] == f"baseline:{loaded.kind}"
    state = dict(zip(ds.feature_names, ds.x(np.array([ds.n - 1]))[0], strict=True))
    regimes = {c.series: str(ds.regimes[-1, j]) for j, c in enumerate(ds.candidates)}
    probs = loaded.predict_proba(state, regimes=regimes)
    assert sorted(probs.values())[-1] == 1.0 and sum(probs.values()) == 1.0
    deployable = {k: v for k, v in report.holdout.items() if k.split(" ")[0] in
                  ("single_best", "regime_lookup", "cash")}  # fmt: skip
    best = max(deployable, key=lambda k: deployable[k]["net_return"])
    assert best.split(" ")[0] == loaded.kind


def _oracle(ds: SelectorDataset) -> SelectorModel:
    """A champion that has seen the held-out rows: 1-nearest-neighbour on every row."""
    ids = np.array([c.id for c in ds.candidates], dtype=object)
    knn = KNeighborsClassifier(n_neighbors=1).fit(ds.x(), ids[ds.labels])
    return SelectorModel(
        knn,
        candidates=ds.candidates,
        feature_names=ds.feature_names,
        series=ds.series,
        interval=ds.interval,
        warmup_bars=STATE_WARMUP_BARS,
    )


def test_the_gate_refuses_a_worse_model(ds: SelectorDataset, registry: MlflowRegistry) -> None:
    _, hold = holdout_split(
        ds.n, FAST.holdout_fraction, decision_times=ds.decision_times, label_ends=ds.label_ends
    )
    oracle = _oracle(ds)
    oracle_metrics = rescore(ds, oracle, hold)
    assert oracle_metrics is not None and oracle_metrics["heldout_hit_rate"] == 1.0
    v1, d1 = register_gated(registry, oracle, name=MODEL_NAME, metrics=oracle_metrics)
    assert v1 == 1 and d1.promote

    report = train(ds, registry=registry, settings=FAST)
    assert report.version == 2
    assert report.champion_rescored
    assert report.gate is not None and not report.gate.promote
    cand = report.holdout[MODEL]["net_return"]
    assert cand < oracle_metrics["heldout_net_return"]
    # the model lost to a baseline; the baseline policy registered instead loses to the champion
    assert report.policy_version == 3 and report.policy_gate is not None
    assert not report.policy_gate.promote
    champ = report.policy_gate.comparison["champion"]
    assert champ == pytest.approx(oracle_metrics["heldout_net_return"])
    # the alias did not move; the refusals are recorded on the new versions
    assert registry.champion(MODEL_NAME)[0] == 1  # type: ignore[index]
    assert int(registry.client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == 1
    tags = registry.client.get_model_version(MODEL_NAME, "2").tags
    assert tags["gate.promote"] == "false" and "loses to the baseline" in tags["gate.reason"]
    tags = registry.client.get_model_version(MODEL_NAME, "3").tags
    assert tags["gate.promote"] == "false" and "does not beat champion" in tags["gate.reason"]
    assert float(tags["gate.champion"]) == pytest.approx(oracle_metrics["heldout_net_return"])
    assert tags["policy"].startswith("baseline:")
    assert isinstance(registry.load(MODEL_NAME).estimator, KNeighborsClassifier)


def test_cli_without_discovery_outputs_is_a_user_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from trading_pipeline import cli

    data = tmp_path / "data"
    data.mkdir()
    code = cli.main(["selector", "train", "--data-dir", str(data)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "top_strategies.json" in err
    assert list(data.iterdir()) == []
    assert cli.main(["selector", "train", "--data-dir", str(data), "--holdout", "1.5"]) == 2


def test_the_held_out_period_never_starts_before_the_candidates_cut_off(
    ds: SelectorDataset,
) -> None:
    """The candidates were chosen on the returns before ``candidate_cutoff`` (built for a 25 %
    hold-out): training with that share holds out exactly from the cut-off; a larger share
    cannot reach back before it; a smaller one starts later, as asked."""
    cutoff = ds.candidate_cutoff
    assert cutoff is not None
    t = ds.frame.get_column("decision_time")
    dev, hold = split_rows(ds, 0.25)
    assert t[int(hold[0])] == cutoff
    expected = holdout_split(ds.n, 0.25, decision_times=ds.decision_times, label_ends=ds.label_ends)
    assert np.array_equal(dev, expected[0]) and np.array_equal(hold, expected[1])
    dev, hold = split_rows(ds, 0.4)
    assert t[int(hold[0])] == cutoff and t[int(hold[0]) - 1] < cutoff
    assert ds.label_ends[dev].max() < ds.decision_times[hold].min()
    dev, hold = split_rows(ds, 0.1)
    assert t[int(hold[0])] > cutoff
    report = fit_and_evaluate(ds, TrainSettings(holdout_fraction=0.4, configs=FAST.configs))
    assert report.n_holdout == ds.n - int((t < cutoff).sum())
    assert report.model.info["candidate_cutoff"] == ds.selection["cutoff"]


def test_decisions_and_deployments_follow_a_baseline_champion(
    ds: SelectorDataset, registry: MlflowRegistry
) -> None:
    """The model loses to its baselines here: the champion is the baseline policy, and the
    decision every bot gets (and the assignment a deploy writes) is the policy's choice."""
    from datetime import timedelta

    from trading_pipeline.bots.fleet import candidates_from_decisions
    from trading_pipeline.selector.decide import ModelRef, decide_once

    report = train(ds, registry=registry, settings=FAST)
    assert not report.beats_baselines and report.policy_gate is not None
    version, _ = registry.champion(MODEL_NAME)  # type: ignore[misc]
    assert version == report.policy_version
    tags = registry.client.get_model_version(MODEL_NAME, str(version)).tags
    policy = registry.load(MODEL_NAME)
    assert isinstance(policy, BaselinePolicy) and tags["policy"] == f"baseline:{policy.kind}"
    bars = market(n_bars=24 * 130, seed=21)
    now = bars[ds.series[0]]["open_time"][-1] + timedelta(hours=1)
    decisions = decide_once(
        policy, bars, now, {}, model_ref=ModelRef(MODEL_NAME, version), fleet=FLEET
    )
    by_id = {c.id: c for c in ds.candidates}
    for d in decisions:
        assert d.model_version == version
        pick = policy.choose_id(None) if policy.kind != "regime_lookup" else d.choice
        bot = next(b for b in FLEET if b.name == d.bot)
        c = by_id[pick]
        runs_it = c.family == "cash" or (
            bot.allows(c.family) and c.series.split("-")[1] in bot.symbols
        )
        assert d.choice == (pick if runs_it else "cash")
    deployed = {
        a.bot: a for a in candidates_from_decisions({d.bot: d for d in decisions}, {}, now=now)
    }
    for d in decisions:
        assert deployed[d.bot].lineage["model_version"] == version
        assert deployed[d.bot].family == by_id[d.choice].family
