"""The ``DiscoveryStore`` resource: where Optuna studies, MLflow runs and discovery outputs live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from trading_pipeline.settings import Settings

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from trading_pipeline.tracking import MlflowTracker


class DiscoveryStore(dg.ConfigurableResource):
    """Optuna storage (``TP_OPTUNA_STORAGE``, default a journal file under the data dir), the
    MLflow tracking URI (``TP_MLFLOW_TRACKING_URI``, default SQLite under the data dir) and
    ``<data_dir>/discovery`` for the files later stages read."""

    data_dir: str = "data"
    optuna_storage: str | None = None
    tracking_uri: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DiscoveryStore:
        return cls(
            data_dir=str(settings.data_dir),
            optuna_storage=settings.optuna_storage,
            tracking_uri=settings.mlflow_tracking_uri,
        )

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / "discovery"

    def storage_url(self) -> str:
        from trading_pipeline.discovery.storage import default_storage_url

        return self.optuna_storage or default_storage_url(self.data_dir)

    def storage(self) -> BaseStorage:
        from trading_pipeline.discovery.storage import open_storage

        return open_storage(self.storage_url(), data_dir=self.data_dir)

    def mlflow_uri(self) -> str:
        from trading_pipeline.tracking import default_tracking_uri

        return self.tracking_uri or default_tracking_uri(self.data_dir)

    def tracker(self) -> MlflowTracker:
        from trading_pipeline.discovery.report import EXPERIMENT
        from trading_pipeline.tracking import MlflowTracker

        return MlflowTracker(self.mlflow_uri(), EXPERIMENT)

    def run_link(self, experiment_id: str, run_id: str) -> str:
        """The run's page for a tracking server; the run id under the URI for a local store."""
        uri = self.mlflow_uri()
        if uri.startswith(("http://", "https://")):
            return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return f"{uri}#experiment={experiment_id}&run={run_id}"


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"discovery": DiscoveryStore.from_settings(Settings.from_env())}
    )
