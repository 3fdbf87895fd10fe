"""Links a person clicks: MLflow runs and model versions, Dagster runs and asset partitions.

Dagster metadata points at MLflow (``TP_MLFLOW_UI_URL``, default ``http://127.0.0.1:5000``, or
the tracking server itself when MLflow tracks to http(s)), and MLflow runs point back at the
Dagster run and partition that made them (``TP_DAGSTER_UI_URL``, default
``http://127.0.0.1:3000``). The paths are the UIs' own routes (MLflow's hash router, Dagster's
``/runs`` and ``/assets``); nothing here talks to either server.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

# MLflow 3.17's UI opens an experiment in its GenAI view unless told otherwise: its sidebar
# switch (kept per browser) or this query on the experiment's routes selects "Model training"
MLFLOW_TRAINING_VIEW = "workflowType=machine_learning"

# MLflow run tags that point back at Dagster
DAGSTER_RUN_ID_TAG = "dagster.run_id"
DAGSTER_RUN_URL_TAG = "dagster.run_url"
DAGSTER_PARTITION_TAG = "dagster.partition"
DAGSTER_ASSET_TAG = "dagster.asset"
DAGSTER_ASSET_URL_TAG = "dagster.asset_url"


def mlflow_ui(ui_url: str, tracking_uri: str | None = None) -> str:
    """The MLflow UI's base: the tracking server when MLflow tracks to http(s), else ``ui_url``
    (the ``mlflow ui`` a person starts over the embedded store)."""
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return ui_url.rstrip("/")


def mlflow_run_url(ui: str, run_id: str, experiment_id: str | None = None) -> str:
    """``{ui}/#/experiments/{exp}/runs/{run}?workflowType=machine_learning`` (the training
    view); ``{ui}/#/runs/{run}`` when the experiment is not known: MLflow finds it (and its
    redirect drops any query)."""
    run = quote(run_id, safe="")
    if experiment_id:
        exp = quote(str(experiment_id), safe="")
        return f"{ui.rstrip('/')}/#/experiments/{exp}/runs/{run}?{MLFLOW_TRAINING_VIEW}"
    return f"{ui.rstrip('/')}/#/runs/{run}"


def mlflow_model_version_url(ui: str, name: str, version: int | str) -> str:
    """``{ui}/#/models/{name}/versions/{v}``."""
    return f"{ui.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{quote(str(version))}"


def dagster_run_url(ui: str, run_id: str) -> str:
    """``{ui}/runs/{run_id}``."""
    return f"{ui.rstrip('/')}/runs/{quote(run_id, safe='')}"


def dagster_asset_url(ui: str, asset_key: Sequence[str], partition: str | None = None) -> str:
    """``{ui}/assets/{a/b}`` and, for one partition, its partitions view with it selected."""
    path = "/".join(quote(p, safe="") for p in asset_key)
    url = f"{ui.rstrip('/')}/assets/{path}"
    if partition is not None:
        url += "?" + urlencode({"view": "partitions", "partition": partition})
    return url


def dagster_tags(
    ui: str,
    run_id: str,
    *,
    asset_key: Sequence[str] | None = None,
    partition: str | None = None,
) -> dict[str, str]:
    """The tags an MLflow run made inside a Dagster run carries: the run (id and link) and,
    when known, the asset and partition (with a link to that partition)."""
    tags = {DAGSTER_RUN_ID_TAG: run_id, DAGSTER_RUN_URL_TAG: dagster_run_url(ui, run_id)}
    if partition is not None:
        tags[DAGSTER_PARTITION_TAG] = partition
    if asset_key is not None:
        tags[DAGSTER_ASSET_TAG] = "/".join(asset_key)
        tags[DAGSTER_ASSET_URL_TAG] = dagster_asset_url(ui, asset_key, partition)
    return tags


def md_link(text: str, url: str) -> str:
    """A Markdown link (brackets in ``text`` escaped)."""
    label = text.replace("[", "\\[").replace("]", "\\]")
    return f"[{label}]({url})"
