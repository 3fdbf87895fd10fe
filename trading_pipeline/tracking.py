"""Experiment tracking behind a small port, with MLflow as the adapter.

Domain code (discovery, selector, paper replays) talks to :class:`Tracker`; tests hand it
an :class:`InMemoryTracker`, production an :class:`MlflowTracker` over the embedded SQLite
store under the data dir (or a tracking server URI). MLflow is imported lazily: it costs
about two seconds and most commands never need it.
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Mapping
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


class Tracker(Protocol):
    """Records one run: parameters, metrics, tags and artifact files."""

    def start_run(self, name: str, *, tags: Mapping[str, str] | None = None) -> str: ...
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None: ...
    def log_artifact(self, run_id: str, path: str | Path) -> None: ...
    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...


@dataclass
class InMemoryTracker:
    """A tracker that keeps everything in dictionaries (tests, dry runs)."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start_run(self, name: str, *, tags: Mapping[str, str] | None = None) -> str:
        run_id = f"run-{len(self.runs) + 1}"
        self.runs[run_id] = {
            "name": name,
            "tags": dict(tags or {}),
            "params": {},
            "metrics": {},
            "artifacts": [],
            "status": "RUNNING",
        }
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.runs[run_id]["params"].update({k: str(v) for k, v in params.items()})

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        self.runs[run_id]["metrics"].update(finite_metrics(metrics))

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
    dir; otherwise MLflow would drop artifacts in ``./mlruns`` of whatever the cwd is.
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
        else:
            location = None
            if artifact_root is not None:
                location = Path(artifact_root).resolve().as_uri()
            elif tracking_uri.startswith("sqlite:///"):
                location = (
                    Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
                ).as_uri()
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=location
            )

    def start_run(self, name: str, *, tags: Mapping[str, str] | None = None) -> str:
        all_tags = {"code_version": code_version(), **dict(tags or {})}
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
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

    def log_artifact(self, run_id: str, path: str | Path) -> None:
        self.client.log_artifact(run_id, str(path))

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)


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
