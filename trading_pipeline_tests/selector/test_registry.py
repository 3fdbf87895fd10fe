"""The model registry port: promotion gate, in-memory adapter, and MLflow on a real SQLite store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from trading_pipeline.selector.registry import (
    GateDecision,
    InMemoryRegistry,
    MlflowRegistry,
    ModelRegistry,
    promotion_gate,
    register_gated,
)
from trading_pipeline.tracking import default_tracking_uri

pytestmark = pytest.mark.slow  # an MLflow store

NAME = "strategy-selector"


def _data(seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "volatility": rng.normal(size=120),
            "trend": rng.normal(size=120),
            "fng": rng.uniform(size=120),
        }
    )
    y = np.where(x["trend"] > 0, "sma_cross", "cash")
    return x, y


def _model(c: float) -> Pipeline:
    x, y = _data()
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=c))]).fit(x, y)


# --- the gate -------------------------------------------------------------------------------


def test_gate_promotes_without_a_champion() -> None:
    d = promotion_gate({"heldout_net_return": -0.1}, None)
    assert d.promote and d.reason == "no champion yet"


@pytest.mark.parametrize(
    ("candidate", "champion", "min_improvement", "promote"),
    [
        (0.12, 0.10, 0.0, True),
        (0.10, 0.10, 0.0, False),  # a tie is not a win
        (0.08, 0.10, 0.0, False),
        (0.12, 0.10, 0.05, False),  # better, but not by enough
        (float("nan"), 0.10, 0.0, False),
        (0.12, float("nan"), 0.0, False),
    ],
)
def test_gate_never_lets_a_worse_model_take_over(
    candidate: float, champion: float, min_improvement: float, promote: bool
) -> None:
    d = promotion_gate(
        {"heldout_net_return": candidate},
        {"heldout_net_return": champion},
        min_improvement=min_improvement,
    )
    assert d.promote is promote
    assert d.comparison["metric"] == "heldout_net_return"
    if np.isfinite(candidate) and np.isfinite(champion):
        assert d.comparison["improvement"] == pytest.approx(candidate - champion)


def test_gate_refuses_a_candidate_missing_the_metric_and_uses_the_chosen_metric() -> None:
    assert not promotion_gate({"sharpe": 3.0}, None).promote
    d = promotion_gate({"sharpe": 1.0, "heldout_net_return": -1}, {"sharpe": 0.5}, metric="sharpe")
    assert d.promote and d.comparison["champion"] == 0.5
    with pytest.raises(ValueError):
        promotion_gate({"sharpe": 1.0}, None, min_improvement=-0.1)


# --- both adapters through the same scenario -----------------------------------------------


def _scenario(registry: ModelRegistry) -> list[GateDecision]:
    x, _ = _data()
    example = x.head(3)
    decisions = []
    for c, score in [(1.0, 0.10), (0.01, 0.05), (10.0, 0.20)]:  # v1, a worse v2, a better v3
        version, decision = register_gated(
            registry,
            _model(c),
            name=NAME,
            metrics={"heldout_net_return": score, "accuracy": 0.9},
            params={"C": c},
            tags={"study": "unit"},
            input_example=example,
        )
        champion = registry.champion(NAME)
        assert champion is not None
        expected = {1: 1, 2: 1, 3: 3}[version]
        assert champion[0] == expected, f"after v{version} the champion must be v{expected}"
        assert champion[1]["heldout_net_return"] == {1: 0.10, 2: 0.10, 3: 0.20}[version]
        decisions.append(decision)
    loaded: Any = registry.load(NAME)
    assert isinstance(loaded, Pipeline)
    assert loaded.named_steps["clf"].C == 10.0  # the v3 model, through the alias
    assert np.array_equal(loaded.predict(x), _model(10.0).predict(x))
    assert set(loaded.predict(x)) <= {"cash", "sma_cross"}
    return decisions


def test_in_memory_registry_scenario() -> None:
    reg = InMemoryRegistry()
    assert reg.champion(NAME) is None
    with pytest.raises(LookupError):
        reg.load(NAME)
    decisions = _scenario(reg)
    assert [d.promote for d in decisions] == [True, False, True]
    assert reg.models[NAME][1].tags["gate.promote"] == "false"
    assert reg.models[NAME][1].tags["gate.champion_version"] == "1"
    with pytest.raises(LookupError):
        reg.promote(NAME, 9)


def test_mlflow_registry_on_a_real_sqlite_store(tmp_path: Path) -> None:
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    uri = default_tracking_uri(tmp_path)
    reg = MlflowRegistry(uri, "strategy-selector")
    assert reg.champion(NAME) is None
    decisions = _scenario(reg)
    assert [d.promote for d in decisions] == [True, False, True]

    # a second handle on the same store sees the same state (nothing lives only in memory)
    again = MlflowRegistry(uri, "strategy-selector")
    assert again.experiment_id == reg.experiment_id
    champion = again.champion(NAME)
    assert champion is not None and champion[0] == 3
    refused = again.client.get_model_version(NAME, "2")
    assert refused.tags["gate.promote"] == "false"
    assert refused.tags["gate.champion_version"] == "1"
    assert float(refused.tags["gate.improvement"]) == pytest.approx(-0.05)
    run = again.client.get_run(refused.run_id)
    assert run.data.params["C"] == "0.01" and run.data.tags["code_version"]
    aliases = again.client.get_registered_model(NAME).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "3"}

    # artifacts are under the data dir, and MLflow's global URIs are left as they were
    assert list((tmp_path / "mlflow" / "artifacts").rglob("MLmodel"))
    assert {k: os.environ.get(k) for k in before} == before

    # manual promotion moves the alias back, and load follows it
    again.promote(NAME, 1)
    assert again.load(NAME).named_steps["clf"].C == 1.0


def test_mlflow_registry_can_store_skops(tmp_path: Path) -> None:
    reg = MlflowRegistry(default_tracking_uri(tmp_path), "skops", serialization_format="skops")
    x, _ = _data()
    version = reg.register(_model(1.0), name=NAME, metrics={"heldout_net_return": 0.1})
    reg.promote(NAME, version)
    assert list((tmp_path / "mlflow" / "artifacts").rglob("model.skops"))
    assert np.array_equal(reg.load(NAME).predict(x), _model(1.0).predict(x))


def test_a_swapped_model_artifact_is_refused_not_run(tmp_path: Path) -> None:
    """Trust boundary: the champion is loaded with skops against the project's own list of types,
    so replacing the stored artifact with a crafted file (a pickle, or skops naming os.system,
    even with an edited MLmodel that 'trusts' it) is refused and runs nothing."""
    import pickle

    import skops.io
    import yaml

    from trading_pipeline.selector.registry import UntrustedModel
    from trading_pipeline_tests.selector.test_model import _model

    reg = MlflowRegistry(default_tracking_uri(tmp_path), "strategy-selector")
    model = _model()
    reg.promote(NAME, reg.register(model, name=NAME, metrics={"heldout_net_return": 0.1}))
    loaded = reg.load(NAME)
    assert type(loaded).__name__ == "SelectorModel"
    assert loaded.candidate_ids == model.candidate_ids
    [artifact] = list((tmp_path / "mlflow").rglob("model.skops"))
    mlmodel = artifact.parent / "MLmodel"

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.skops"
    skops.io.dump({"run": os.system, "cmd": f"touch {marker}"}, evil)
    artifact.write_bytes(evil.read_bytes())
    conf = yaml.safe_load(mlmodel.read_text())
    conf["flavors"]["sklearn"]["skops_trusted_types"] = ["posix.system", "builtins.dict"]
    mlmodel.write_text(yaml.safe_dump(conf))
    with pytest.raises(UntrustedModel, match="does not trust"):
        reg.load(NAME)

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    pickled = artifact.with_name("model.pkl")
    pickled.write_bytes(pickle.dumps(Payload()))
    conf["flavors"]["sklearn"].update(serialization_format="cloudpickle", pickled_model="model.pkl")
    mlmodel.write_text(yaml.safe_dump(conf))
    with pytest.raises(UntrustedModel, match="stored as cloudpickle"):
        reg.load(NAME)
    assert not marker.exists()
