"""The link builders: the UIs' routes, escaping, and the tags that point back at Dagster."""

import pytest

from trading_pipeline import links
from trading_pipeline.settings import Settings, SettingsError

UI = "http://127.0.0.1:5000"


def test_mlflow_links_use_the_ui_routes() -> None:
    assert links.mlflow_run_url(UI, "abc123", "7") == (
        f"{UI}/#/experiments/7/runs/abc123?workflowType=machine_learning"
    )
    assert links.mlflow_run_url(UI + "/", "abc123") == f"{UI}/#/runs/abc123"
    assert (
        links.mlflow_model_version_url(UI, "strategy-selector", 3)
        == f"{UI}/#/models/strategy-selector/versions/3"
    )
    assert links.mlflow_model_version_url(UI, "a b/c", 1) == f"{UI}/#/models/a%20b%2Fc/versions/1"


def test_the_tracking_server_is_the_ui_when_mlflow_tracks_over_http() -> None:
    assert links.mlflow_ui(UI, "sqlite:////tmp/x/mlflow.db") == UI
    assert links.mlflow_ui(UI, "http://10.0.0.5:5001/") == "http://10.0.0.5:5001"


def test_dagster_links_and_tags() -> None:
    ui = "http://127.0.0.1:3000"
    assert links.dagster_run_url(ui, "r-1") == f"{ui}/runs/r-1"
    url = links.dagster_asset_url(ui, ["history", "klines"], "2024-01-01|spot-BTCUSDT-1h")
    assert url == (
        f"{ui}/assets/history/klines?view=partitions&partition=2024-01-01%7Cspot-BTCUSDT-1h"
    )
    tags = links.dagster_tags(ui, "r-1", asset_key=["strategy_results"], partition="p|q")
    assert tags[links.DAGSTER_RUN_URL_TAG] == f"{ui}/runs/r-1"
    assert tags[links.DAGSTER_PARTITION_TAG] == "p|q"
    assert tags[links.DAGSTER_ASSET_URL_TAG].startswith(f"{ui}/assets/strategy_results?")
    assert links.DAGSTER_PARTITION_TAG not in links.dagster_tags(ui, "r-2")


def test_md_link_escapes_brackets() -> None:
    assert links.md_link("v[1]", "http://x/") == "[v\\[1\\]](http://x/)"


def test_ui_urls_come_from_the_environment() -> None:
    s = Settings.from_env({})
    assert (s.mlflow_ui_url, s.dagster_ui_url) == (UI, "http://127.0.0.1:3000")
    s = Settings.from_env(
        {"TP_MLFLOW_UI_URL": "https://mlflow.example/", "TP_DAGSTER_UI_URL": "http://h:3001"}
    )
    assert (s.mlflow_ui_url, s.dagster_ui_url) == ("https://mlflow.example", "http://h:3001")
    with pytest.raises(SettingsError, match="TP_MLFLOW_UI_URL"):
        Settings.from_env({"TP_MLFLOW_UI_URL": "127.0.0.1:5000"})
