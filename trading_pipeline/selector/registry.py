"""Where selector models live: a registry port, an in-memory and an MLflow adapter, and the gate.

A trained selector is registered as a new version of a named model; the alias ``champion``
marks the version the bots follow. :func:`promotion_gate` decides whether a candidate may take
that alias: only by beating the champion on the chosen metric, so a worse model never takes
over. The caller is responsible for scoring both models on the *same* held-out period (re-score
the champion on the candidate's held-out rows) before asking the gate. :func:`register_gated`
ties the three steps together and records the gate's comparison on the candidate version.

Domain code and tests use :class:`InMemoryRegistry`; production uses :class:`MlflowRegistry`
over the embedded SQLite store. MLflow is imported lazily.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trading_pipeline.tracking import finite_metrics

CHAMPION = "champion"
# The only non-sklearn types a selector model may contain. A model is loaded with skops against
# THIS list, never the list stored beside the artifact (an edited MLmodel could trust anything).
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "trading_pipeline.selector.model.Candidate",
    "trading_pipeline.selector.model.ModelConfig",
    "trading_pipeline.selector.model.SelectorModel",
    "trading_pipeline.selector.model.TemperatureCalibrated",
    "trading_pipeline.selector.model._Constant",
    "trading_pipeline.selector.policy.BaselinePolicy",
)


class UntrustedModel(RuntimeError):
    """A registered model that could run code when loaded (pickle, or untrusted skops types)."""


DEFAULT_METRIC = "heldout_net_return"


class ModelRegistry(Protocol):
    """Versioned models by name, with movable aliases (``champion``)."""

    def register(
        self,
        model: Any,
        *,
        name: str,
        metrics: Mapping[str, float],
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        input_example: Any = None,
    ) -> int: ...
    def champion(self, name: str) -> tuple[int, dict[str, float]] | None: ...
    def promote(self, name: str, version: int) -> None: ...
    def load(self, name: str, alias: str = CHAMPION) -> Any: ...
    def annotate(self, name: str, version: int, tags: Mapping[str, str]) -> None: ...
    def describe(self, name: str, version: int, text: str) -> None: ...


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate takes the champion alias, why, and the numbers compared."""

    promote: bool
    reason: str
    comparison: dict[str, Any]

    def as_tags(self) -> dict[str, str]:
        """Flat string tags (``gate.*``) for a model version or run."""
        tags = {"gate.promote": str(self.promote).lower(), "gate.reason": self.reason}
        tags.update({f"gate.{k}": str(v) for k, v in self.comparison.items()})
        return tags


def promotion_gate(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    *,
    metric: str = DEFAULT_METRIC,
    min_improvement: float = 0.0,
) -> GateDecision:
    """Promote only when the candidate beats the champion by more than ``min_improvement``.

    No champion yet → promote (if the candidate has a finite score). A tie is not a win. A
    candidate or champion without a finite ``metric`` is refused: nothing can be shown better.
    """
    if min_improvement < 0 or not math.isfinite(min_improvement):
        raise ValueError("min_improvement must be a finite number >= 0")
    cand = _score(candidate_metrics, metric)
    comparison: dict[str, Any] = {
        "metric": metric,
        "candidate": cand,
        "champion": None,
        "min_improvement": min_improvement,
        "improvement": None,
    }
    if cand is None:
        return GateDecision(False, f"candidate has no finite {metric}", comparison)
    if champion_metrics is None:
        return GateDecision(True, "no champion yet", comparison)
    champ = _score(champion_metrics, metric)
    comparison["champion"] = champ
    if champ is None:
        return GateDecision(False, f"champion has no finite {metric}; promote by hand", comparison)
    improvement = cand - champ
    comparison["improvement"] = improvement
    if improvement > min_improvement:
        return GateDecision(
            True, f"{metric} {cand:.6g} beats champion {champ:.6g} by {improvement:.6g}", comparison
        )
    return GateDecision(
        False,
        f"{metric} {cand:.6g} does not beat champion {champ:.6g} by more than {min_improvement:g}",
        comparison,
    )


def register_gated(
    registry: ModelRegistry,
    model: Any,
    *,
    name: str,
    metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    input_example: Any = None,
    metric: str = DEFAULT_METRIC,
    min_improvement: float = 0.0,
) -> tuple[int, GateDecision]:
    """Register ``model``, run the gate against the champion, promote if it passes.

    ``champion_metrics`` should be the champion re-scored on the candidate's held-out period;
    when omitted, the champion's registered metrics are used (only valid when both were
    scored on the same period). The decision is recorded as ``gate.*`` tags on the version.
    """
    current = registry.champion(name)
    version = registry.register(
        model, name=name, metrics=metrics, params=params, tags=tags, input_example=input_example
    )
    against: Mapping[str, float] | None = None
    if current is not None:
        against = champion_metrics if champion_metrics is not None else current[1]
    decision = promotion_gate(metrics, against, metric=metric, min_improvement=min_improvement)
    if current is not None:
        decision.comparison["champion_version"] = current[0]
    registry.annotate(name, version, decision.as_tags())
    if decision.promote:
        registry.promote(name, version)
    return version, decision


@dataclass
class _Version:
    model: Any
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    description: str = ""


@dataclass
class InMemoryRegistry:
    """A registry in dictionaries (tests, dry runs); models are deep-copied on the way in."""

    models: dict[str, list[_Version]] = field(default_factory=dict)
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)

    def register(
        self,
        model: Any,
        *,
        name: str,
        metrics: Mapping[str, float],
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        input_example: Any = None,
    ) -> int:
        versions = self.models.setdefault(name, [])
        versions.append(
            _Version(
                copy.deepcopy(model),
                finite_metrics(metrics),
                {k: str(v) for k, v in (params or {}).items()},
                dict(tags or {}),
            )
        )
        return len(versions)

    def champion(self, name: str) -> tuple[int, dict[str, float]] | None:
        version = self.aliases.get(name, {}).get(CHAMPION)
        if version is None:
            return None
        return version, dict(self._get(name, version).metrics)

    def promote(self, name: str, version: int) -> None:
        self._get(name, version)
        self.aliases.setdefault(name, {})[CHAMPION] = version

    def load(self, name: str, alias: str = CHAMPION) -> Any:
        version = self.aliases.get(name, {}).get(alias)
        if version is None:
            raise LookupError(f"model {name!r} has no version with alias {alias!r}")
        return self._get(name, version).model

    def annotate(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        self._get(name, version).tags.update(tags)

    def describe(self, name: str, version: int, text: str) -> None:
        self._get(name, version).description = text

    def _get(self, name: str, version: int) -> _Version:
        versions = self.models.get(name, [])
        if not 1 <= version <= len(versions):
            raise LookupError(f"model {name!r} has no version {version}")
        return versions[version - 1]


class MlflowRegistry:
    """The MLflow Model Registry: one run per registration in ``experiment``, alias ``champion``.

    The experiment is created (or found) through :class:`~trading_pipeline.tracking.MlflowTracker`,
    so its artifacts land under the data dir beside the SQLite store, not in ``./mlruns``.
    ``mlflow.sklearn.log_model`` only works through MLflow's fluent (global) state; the tracking
    and registry URIs are set for the duration of each call and restored afterwards.

    Models are stored with skops and loaded with skops against :data:`TRUSTED_TYPES` (plus the
    types skops trusts itself: scikit-learn and numpy), so swapping the artifact for a crafted
    file cannot run code on the next ``select``: it is refused with :class:`UntrustedModel`. A
    pickled (cloudpickle) model, as this project saved before, is refused the same way unless
    the caller passes ``allow_pickle=True`` for a store it trusts; retraining stores it as skops.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        *,
        artifact_root: str | Path | None = None,
        serialization_format: str = "skops",
        skops_trusted_types: list[str] | None = None,
        allow_pickle: bool = False,
    ):
        from trading_pipeline.tracking import MlflowTracker

        tracker = MlflowTracker(tracking_uri, experiment, artifact_root=artifact_root)
        self.tracking_uri = tracking_uri
        self.experiment_id = tracker.experiment_id
        self.client = tracker.client
        self.serialization_format = serialization_format
        self.skops_trusted_types = list(skops_trusted_types or TRUSTED_TYPES)
        self.allow_pickle = allow_pickle

    def register(
        self,
        model: Any,
        *,
        name: str,
        metrics: Mapping[str, float],
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        input_example: Any = None,
    ) -> int:
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        from trading_pipeline.tracking import run_tags as with_source

        signature = None
        if input_example is not None:
            signature = infer_signature(input_example, model.predict(input_example))
        run_tags = with_source(tags)  # code version and mlflow.source.*; the note if given
        with (
            self._fluent(),
            mlflow.start_run(experiment_id=self.experiment_id, run_name=name, tags=run_tags),
        ):
            if params:
                mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
            mlflow.log_metrics(finite_metrics(metrics))
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=name,
                signature=signature,
                input_example=input_example,
                serialization_format=self.serialization_format,
                skops_trusted_types=self.skops_trusted_types,
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(
                    include_cloudpickle=self.serialization_format == "cloudpickle",
                    include_skops=self.serialization_format == "skops",
                ),
            )
        if info.registered_model_version is None:
            raise RuntimeError(f"MLflow did not register a version of {name!r}")
        return int(info.registered_model_version)

    def champion(self, name: str) -> tuple[int, dict[str, float]] | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            return None  # no such model, or no champion yet
        metrics: dict[str, float] = {}
        if mv.run_id:
            metrics = dict(self.client.get_run(mv.run_id).data.metrics)
        return int(mv.version), metrics

    def promote(self, name: str, version: int) -> None:
        self.client.set_registered_model_alias(name, CHAMPION, str(version))

    def load(self, name: str, alias: str = CHAMPION) -> Any:
        """The model behind ``alias``, deserialised safely (see the class docstring)."""
        import tempfile

        import mlflow.artifacts
        import yaml

        with self._fluent(), tempfile.TemporaryDirectory(prefix="tp-model-") as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{name}@{alias}", dst_path=tmp
                )
            )
            conf = yaml.safe_load((local / "MLmodel").read_text())
            flavor = (conf.get("flavors") or {}).get("sklearn") or {}
            fmt = flavor.get("serialization_format", "pickle")
            path = local / str(flavor.get("pickled_model", "model.pkl"))
            if fmt == "skops":
                return _load_skops(path, self.skops_trusted_types, f"{name}@{alias}")
            if not self.allow_pickle:
                raise UntrustedModel(
                    f"model {name}@{alias} is stored as {fmt}: loading it could run code from the "
                    "artifact store; retrain it (stored as skops) or trust this store explicitly"
                )
            import mlflow.sklearn

            return mlflow.sklearn.load_model(str(local))

    def annotate(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, str(value)[:5000])

    def describe(self, name: str, version: int, text: str) -> None:
        """The version's description (Markdown, shown on its page in the MLflow UI)."""
        self.client.update_model_version(name, str(version), description=text)

    @contextmanager
    def _fluent(self) -> Iterator[None]:
        import mlflow
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        saved_tracking = getattr(tracking_utils, "_tracking_uri", None)
        saved_registry = getattr(registry_utils, "_registry_uri", None)
        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]
            mlflow.set_registry_uri(saved_registry)  # type: ignore[arg-type]
            for key, value in saved_env.items():  # the setters also export these variables
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _load_skops(path: Path, trusted: list[str], what: str) -> Any:
    import skops.io

    untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in trusted]
    if untrusted:
        raise UntrustedModel(
            f"model {what} holds types this project does not trust ({', '.join(untrusted[:3])}): "
            "refused, nothing was loaded"
        )
    return skops.io.load(path, trusted=trusted)


def _score(metrics: Mapping[str, float], metric: str) -> float | None:
    value = metrics.get(metric)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
