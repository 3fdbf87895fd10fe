"""The deployment's Dagster instance files load as Dagster reads them: storage on PostgreSQL
(psycopg2 pinned), the compose instance's DockerRunLauncher, and the gRPC workspace."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_instance_configs_load_with_their_run_launcher_and_storage(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    for name, launcher in (("dagster-compose.yaml", "DockerRunLauncher"),
                           ("dagster-postgres.yaml", None)):  # fmt: skip
        home = tmp_path / name
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "deploy" / name).read_text())
        config, _ = dagster_instance_config(str(home))
        assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
        assert config.get("telemetry", {}).get("enabled") is False
        if launcher:
            assert config["run_launcher"]["class"] == launcher
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace-grpc.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == "code-location" and server["location_name"] == "trading_pipeline"
