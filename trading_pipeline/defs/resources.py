"""The code location's resources, and the one ``@dg.definitions`` that registers them.

``DataLake`` is the one resource that knows where things live: a Dagster-configurable view of
:class:`~trading_pipeline.settings.DataLayout` (the data, history and bots dirs, the MLflow
tracking URI and the Optuna storage). The other resources hold what is not a path (where
Binance Vision or a venue is reached, a sensor's knobs). Every resource is built here from the
environment (``Settings.from_env``): resources are the only place in the Dagster layer that
read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from trading_pipeline import links
from trading_pipeline.defs.bots.resources import BotsRuntime
from trading_pipeline.defs.features.resources import FearGreedSource, NewsSource
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.parquet_io import ParquetIOManager
from trading_pipeline.defs.selector.resources import SelectorRuntime
from trading_pipeline.defs.venues.resources import VenueExchanges
from trading_pipeline.settings import (
    DEFAULT_DAGSTER_UI_URL,
    DEFAULT_MLFLOW_UI_URL,
    DataLayout,
    Settings,
)

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from trading_pipeline.discovery.catalog import StudyCatalog
    from trading_pipeline.selector.registry import MlflowRegistry
    from trading_pipeline.tracking import MlflowTracker


class DataLake(dg.ConfigurableResource):
    """Where every artifact lives (``TP_DATA_DIR``, ``TP_HISTORY_DIR``, ``TP_BOTS_DIR``,
    ``TP_MLFLOW_TRACKING_URI``, ``TP_OPTUNA_STORAGE``); unset fields follow DataLayout's rule."""

    data_dir: str = Field(
        default="data", description="features, discovery, selector, MLflow, Optuna (TP_DATA_DIR)"
    )
    history_dir: str | None = Field(
        default=None, description="the history store (TP_HISTORY_DIR; unset: <data_dir>/history)"
    )
    bots_dir: str | None = Field(
        default=None,
        description="assignments, ledgers, HALT, replays (TP_BOTS_DIR; unset: <data_dir>/bots)",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow store (TP_MLFLOW_TRACKING_URI; unset: SQLite under <data_dir>/mlflow)",
    )
    optuna_storage: str | None = Field(
        default=None,
        description="Optuna storage (TP_OPTUNA_STORAGE; unset: journal under <data_dir>/optuna)",
    )
    mlflow_ui_url: str = Field(
        default=DEFAULT_MLFLOW_UI_URL,
        description="where links to MLflow point (TP_MLFLOW_UI_URL)",
    )
    dagster_ui_url: str = Field(
        default=DEFAULT_DAGSTER_UI_URL,
        description="where MLflow links back to Dagster (TP_DAGSTER_UI_URL)",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> DataLake:
        return cls(
            data_dir=str(settings.data_dir),
            history_dir=_str(settings.history_dir_override),
            bots_dir=_str(settings.bots_dir_override),
            mlflow_tracking_uri=settings.mlflow_tracking_uri,
            optuna_storage=settings.optuna_storage,
            mlflow_ui_url=settings.mlflow_ui_url,
            dagster_ui_url=settings.dagster_ui_url,
        )

    @property
    def layout(self) -> DataLayout:
        return Settings(
            data_dir=Path(self.data_dir),
            history_dir_override=Path(self.history_dir) if self.history_dir else None,
            bots_dir_override=Path(self.bots_dir) if self.bots_dir else None,
            mlflow_tracking_uri=self.mlflow_tracking_uri,
            optuna_storage=self.optuna_storage,
        ).layout

    def storage(self) -> BaseStorage:
        """The Optuna storage the studies live in."""
        from trading_pipeline.discovery.storage import open_storage  # lazy: optuna costs ~1 s

        layout = self.layout
        return open_storage(layout.optuna_storage_url, data_dir=layout.data_dir)

    def catalog(self) -> StudyCatalog:
        """The catalog of tuned studies over this lake's storage and history."""
        from trading_pipeline.discovery.catalog import StudyCatalog  # lazy: optuna costs ~1 s

        return StudyCatalog(self.layout)

    def artifact_root(self) -> Path | None:
        """Where a new experiment keeps its artifacts: the layout's folder for the embedded
        store, the server's choice otherwise."""
        layout = self.layout
        return layout.mlflow_artifacts_dir if layout.uses_embedded_mlflow else None

    def tracker(self, experiment: str) -> MlflowTracker:
        """An MLflow tracker for ``experiment`` (the embedded store's folder created)."""
        from trading_pipeline.tracking import MlflowTracker  # lazy: mlflow costs ~2 s

        uri = self.layout.ensure_mlflow_dir()
        return MlflowTracker(uri, experiment, artifact_root=self.artifact_root())

    def registry(self, experiment: str) -> MlflowRegistry:
        """The MLflow model registry over this lake's store."""
        from trading_pipeline.selector.registry import MlflowRegistry  # lazy: mlflow costs ~2 s

        uri = self.layout.ensure_mlflow_dir()
        return MlflowRegistry(uri, experiment, artifact_root=self.artifact_root())

    def run_link(self, experiment_id: str | None, run_id: str) -> str:
        """The MLflow run's page (``TP_MLFLOW_UI_URL``, or the tracking server itself)."""
        return links.mlflow_run_url(self._mlflow_ui(), run_id, experiment_id)

    def model_link(self, name: str, version: int | str) -> str:
        """The MLflow model version's page."""
        return links.mlflow_model_version_url(self._mlflow_ui(), name, version)

    def dagster_run_link(self, run_id: str) -> str:
        return links.dagster_run_url(self.dagster_ui_url, run_id)

    def dagster_asset_link(self, asset_key: dg.AssetKey, partition: str | None = None) -> str:
        return links.dagster_asset_url(self.dagster_ui_url, asset_key.path, partition)

    def dagster_tags(
        self,
        run_id: str,
        asset_key: dg.AssetKey | None = None,
        partition: str | None = None,
    ) -> dict[str, str]:
        """Tags for an MLflow run made in Dagster run ``run_id``: links back to it and the
        partition it materialized."""
        return links.dagster_tags(
            self.dagster_ui_url,
            run_id,
            asset_key=None if asset_key is None else asset_key.path,
            partition=partition,
        )

    def _mlflow_ui(self) -> str:
        return links.mlflow_ui(self.mlflow_ui_url, self.layout.mlflow_tracking_uri)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource of the location for ``settings`` (keys are the assets' parameter names)."""
    lake = DataLake.from_settings(settings)
    return {
        "lake": lake,
        "history_source": HistorySource.from_settings(settings),
        "fear_greed_source": FearGreedSource(base_url=settings.fng_url),
        "news_source": NewsSource(
            feeds=list(settings.news_feeds), social_files=list(settings.social_files)
        ),
        "venues": VenueExchanges.from_settings(settings),
        "bots_runtime": BotsRuntime(market=settings.market),
        "selector_runtime": SelectorRuntime(venue_url=settings.venue_url("binance")),
        "parquet_io_manager": ParquetIOManager(base_dir=str(lake.layout.tables_dir)),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(Settings.from_env()))
