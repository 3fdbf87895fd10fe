"""Experiment tracking behind a small port, with MLflow as the adapter.

Domain code (discovery, selector, paper replays) talks to :class:`Tracker`; tests hand it
an :class:`InMemoryTracker`, production an :class:`MlflowTracker` over the embedded SQLite
store under the data dir (or a tracking server URI). MLflow is imported lazily: it costs
about two seconds and most commands never need it.

Every experiment is a model-training experiment (tag :data:`EXPERIMENT_KIND_TAG` set to
``custom_model_development``, also on an experiment reopened without it), every run says where
it came from (``mlflow.source.*``) and what it is (``mlflow.note.content``, the run's
description in the UI), the data it read is logged as MLflow dataset inputs (a
:class:`DatasetRef`: name, digest, source), and a per-fold figure is ONE metric with a step
per fold (:meth:`Tracker.log_metric_steps`), which MLflow charts as a line.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from trading_pipeline.errors import UserInputError
from trading_pipeline.settings import DataLayout

# URI schemes MLflow can track to (a plain path is a file store).
TRACKING_SCHEMES = (
    "file",
    "sqlite",
    "http",
    "https",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
)


def check_tracking_uri(uri: str) -> str:
    """``uri`` if MLflow can track to it, else a one-line :class:`UserInputError` (checked
    before any work, so a typo does not surface after a whole study has run)."""
    scheme = urlsplit(uri).scheme.split("+")[0].lower()
    if len(scheme) > 1 and scheme not in TRACKING_SCHEMES:  # one letter: a Windows drive
        raise UserInputError(
            f"unsupported MLflow tracking URI {uri!r}: use sqlite:///PATH, http(s)://HOST, "
            "file:PATH or a database URL"
        )
    return uri


# The experiment's kind. MLflow's UI writes this tag when a person picks "Model training" for an
# experiment (``setExperimentTag(key="mlflow.experimentKind")`` in the bundled JS); 3.17's UI
# shows the view of its sidebar switch (``?workflowType=machine_learning``), see README.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
# The run tags MLflow documents for a run's source and description (mlflow.utils.mlflow_tags)
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
SOURCE_COMMIT_TAG = "mlflow.source.git.commit"
NOTE_TAG = "mlflow.note.content"


@dataclass(frozen=True)
class DatasetRef:
    """A data set a run read, by reference: what MLflow records as a run's dataset input.

    ``source`` is where it lives (a path or URI: the Parquet folder or file), ``digest`` a
    short fingerprint (MLflow stores at most 36 characters; the full checksums travel in
    ``profile`` and the run's artifacts), ``context`` what the run did with it.
    """

    name: str
    source: str
    digest: str
    context: str = "training"
    profile: Mapping[str, Any] = field(default_factory=dict)
    schema: Sequence[tuple[str, str]] = ()  # (column, type)


class Tracker(Protocol):
    """Records one run: parameters, metrics (single or per step), tags, the data it read and
    artifact files. ``description`` is shown as the run's description."""

    def start_run(
        self, name: str, *, tags: Mapping[str, str] | None = None, description: str | None = None
    ) -> str: ...
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None: ...
    def log_metric_steps(self, run_id: str, key: str, values: Sequence[float]) -> None: ...
    def log_dataset(self, run_id: str, dataset: DatasetRef) -> None: ...
    def log_artifact(self, run_id: str, path: str | Path) -> None: ...
    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...


@dataclass
class InMemoryTracker:
    """A tracker that keeps everything in dictionaries (tests, dry runs)."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start_run(
        self, name: str, *, tags: Mapping[str, str] | None = None, description: str | None = None
    ) -> str:
        run_id = f"run-{len(self.runs) + 1}"
        self.runs[run_id] = {
            "name": name,
            "tags": run_tags(tags, description),
            "params": {},
            "metrics": {},
            "history": {},
            "datasets": [],
            "artifacts": [],
            "status": "RUNNING",
        }
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.runs[run_id]["params"].update({k: str(v) for k, v in params.items()})

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        self.runs[run_id]["metrics"].update(finite_metrics(metrics))

    def log_metric_steps(self, run_id: str, key: str, values: Sequence[float]) -> None:
        steps = finite_steps(values)
        self.runs[run_id]["history"][key] = steps
        if steps:
            self.runs[run_id]["metrics"][key] = steps[-1][1]

    def log_dataset(self, run_id: str, dataset: DatasetRef) -> None:
        self.runs[run_id]["datasets"].append(dataset)

    def log_artifact(self, run_id: str, path: str | Path) -> None:
        self.runs[run_id]["artifacts"].append(Path(path).name)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.runs[run_id]["status"] = status


def default_tracking_uri(data_dir: str | Path) -> str:
    """The embedded store under ``data_dir`` (``DataLayout``'s rule), its folder created."""
    return DataLayout.under(data_dir).ensure_mlflow_dir()


class MlflowTracker:
    """The MLflow adapter: one experiment, runs created through ``MlflowClient`` (no global state).

    For a SQLite store the experiment's artifact location is set explicitly under the data
    dir; otherwise MLflow would drop artifacts in ``./mlruns`` of whatever the cwd is. The
    experiment is marked as model training (:data:`EXPERIMENT_KIND_TAG`), also when an
    experiment created before that is reopened.
    """

    def __init__(
        self, tracking_uri: str, experiment: str, *, artifact_root: str | Path | None = None
    ):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        existing = self.client.get_experiment_by_name(experiment)
        if existing is not None:
            self.experiment_id = existing.experiment_id
            if existing.tags.get(EXPERIMENT_KIND_TAG) != TRAINING_KIND:
                self.client.set_experiment_tag(
                    self.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND
                )
        else:
            location = None
            if artifact_root is not None:
                location = Path(artifact_root).resolve().as_uri()
            elif tracking_uri.startswith("sqlite:///"):
                location = (
                    Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
                ).as_uri()
            self.experiment_id = self.client.create_experiment(
                experiment,
                artifact_location=location,
                tags={EXPERIMENT_KIND_TAG: TRAINING_KIND},
            )

    def start_run(
        self, name: str, *, tags: Mapping[str, str] | None = None, description: str | None = None
    ) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags=run_tags(tags, description)
        )
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, 0) for k, v in finite_metrics(metrics).items()]
        self.client.log_batch(run_id, metrics=batch)

    def log_metric_steps(self, run_id: str, key: str, values: Sequence[float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, v, now, step) for step, v in finite_steps(values)]
        self.client.log_batch(run_id, metrics=batch)

    def log_dataset(self, run_id: str, dataset: DatasetRef) -> None:
        log_dataset_input(self.client, run_id, dataset)

    def log_artifact(self, run_id: str, path: str | Path) -> None:
        self.client.log_artifact(run_id, str(path))

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)


def run_tags(
    tags: Mapping[str, str] | None = None, description: str | None = None
) -> dict[str, str]:
    """``tags`` plus what every run carries: the code version, its source (the command or
    Dagster job that made it, as ``mlflow.source.*``) and, given one, its description."""
    version = code_version()
    out = {"code_version": version, **source_tags(tags, version=version), **dict(tags or {})}
    if description:
        out[NOTE_TAG] = description
    return out


def source_tags(
    tags: Mapping[str, str] | None = None, *, version: str | None = None
) -> dict[str, str]:
    """``mlflow.source.name``/``type``/``git.commit`` for a run made now: a Dagster run (its
    tags name one) is a ``JOB`` named after the asset, a command a ``LOCAL`` run named after
    the verb (``trading-pipeline tune``)."""
    tags = tags or {}
    commit = (version or code_version()).removesuffix("+dirty")
    out = {SOURCE_COMMIT_TAG: commit} if re.fullmatch(r"[0-9a-f]{40}", commit) else {}
    dagster_run = tags.get("dagster.run_id") or tags.get("dagster_run_id")
    if dagster_run:
        asset = tags.get("dagster.asset", "")
        out |= {SOURCE_TYPE_TAG: "JOB", SOURCE_NAME_TAG: f"dagster {asset}".strip()}
        return out
    argv = [a for a in sys.argv[:3] if a]
    prog = Path(argv[0]).name if argv else "python"
    if prog in ("trading-pipeline", "__main__.py"):
        verbs = [a for a in argv[1:] if not a.startswith("-")][:2]
        name = " ".join(["trading-pipeline", *verbs])
    else:
        name = prog
    return out | {SOURCE_TYPE_TAG: "LOCAL", SOURCE_NAME_TAG: name}


def log_dataset_input(client: Any, run_id: str, dataset: DatasetRef) -> None:
    """Record ``dataset`` as an input of the run (``client.log_inputs``): a reference, what
    ``mlflow.data.meta_dataset.MetaDataset`` records, with our digest and profile; the data
    itself is not copied."""
    from mlflow.entities import Dataset
    from mlflow.types import ColSpec, Schema

    schema = None
    if dataset.schema:
        cols = Schema([ColSpec(_mlflow_type(t), c) for c, t in dataset.schema])
        schema = json.dumps({"mlflow_colspec": cols.to_dict()})
    source = _local_source(dataset.source)
    entity = Dataset(
        name=dataset.name,
        digest=dataset.digest[:36],
        source_type=source._get_source_type(),
        source=source.to_json(),
        schema=schema,
        profile=json.dumps(dict(dataset.profile), default=str, sort_keys=True)
        if dataset.profile
        else None,
    )
    _log_input(client, run_id, entity, dataset.context)


def log_frame_input(
    client: Any, run_id: str, frame: Any, *, name: str, source: str, context: str
) -> None:
    """Record a polars ``frame`` (the rows a model was fitted or judged on) as an input of the
    run: MLflow computes its digest, schema and row count (``mlflow.data.from_polars``)."""
    from mlflow.data.polars_dataset import from_polars

    ds = from_polars(frame, source=_local_source(source), name=name)
    _log_input(client, run_id, ds._to_mlflow_entity(), context)


def _log_input(client: Any, run_id: str, entity: Any, context: str) -> None:
    from mlflow.entities import DatasetInput, InputTag

    tags = [InputTag("mlflow.data.context", context)]
    client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=tags)])


def _local_source(path: str) -> Any:
    """MLflow's source for a local path (its registry would warn that two resolvers match)."""
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return resolve_dataset_source(str(path))


def _mlflow_type(dtype: str) -> str:
    """An MLflow column type for a polars/numpy dtype name (anything else is a string)."""
    d = dtype.lower()
    if d.startswith(("float", "f64", "f32")):
        return "double"
    if d.startswith(("int", "uint", "i64", "i32")):
        return "long"
    if d.startswith("bool"):
        return "boolean"
    if d.startswith(("datetime", "date")):
        return "datetime"
    return "string"


def finite_steps(values: Sequence[float]) -> list[tuple[int, float]]:
    """``(step, value)`` for each finite value, the step being its position (a fold's index)."""
    return [
        (i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(float(v))
    ]


def finite_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """MLflow rejects NaN/inf; such metrics are dropped rather than invented."""
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def code_version() -> str:
    """The git commit of the running code (``+dirty`` when the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from trading_pipeline import __version__

        return f"v{__version__}"
    return sha + ("+dirty" if dirty else "")
