"""The performance_matrix heatmap shows inline on its Dagster asset page, in headless Chromium.

The real Dagster webserver over the project's workspace, an instance in tmp holding a
materialization of ``performance_matrix`` whose ``heatmap`` entry is what the asset writes (the
short Markdown pointing at the PNG its MLflow run holds, served by a real ``mlflow server``), and
its Sharpe table as ``MetadataValue.table``. The page's DOM must hold the image (an ``<img>``
fetching it from the MLflow UI), not a "[Show Markdown]" button for it. The screenshot is kept
as ``.pytest_cache/dagster-asset-heatmap.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.discovery.assets import HEATMAP
from trading_pipeline.defs.discovery.charts import heatmap_png
from trading_pipeline.defs.tables import artifact_image, image_md, table
from trading_pipeline.discovery.matrix import pivot
from trading_pipeline.local_servers import (
    dagster_ui_commands,
    mlflow_environment,
    mlflow_server_command,
    ui_environment,
)
from trading_pipeline.tracking import MlflowTracker, default_tracking_uri
from trading_pipeline_tests.servers import free_port

pytestmark = pytest.mark.slow  # an MLflow server, the Dagster webserver and a browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START_BOUND_S = 300.0  # both servers, on a loaded 2-core machine


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status) == 200
    except OSError:
        return False


def _serve(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=30000",
             "--window-size=1400,1800"]  # fmt: skip
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=300
    )


def _matrix() -> pl.DataFrame:
    rows = [
        ("spot-BTCUSDT-1h", s, r, v)
        for s, base in (("sma_cross", 0.8), ("momentum", -0.3), ("buy_and_hold", 0.5))
        for r, v in (("all", base), ("bull", base + 1.1), ("bear", base - 1.4))
    ]
    return pl.DataFrame(rows, schema=["series", "strategy", "regime", "sharpe"], orient="row")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.timeout(900)
def test_heatmap_is_inline_on_the_asset_page(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    uri = default_tracking_uri(data)
    tracker = MlflowTracker(uri, "strategy-discovery")
    png = heatmap_png(_matrix())
    run_id = tracker.start_run("performance_matrix")
    (tmp_path / HEATMAP).write_bytes(png)
    tracker.log_artifact(run_id, tmp_path / HEATMAP)
    tracker.end_run(run_id)

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    mlflow_port, dagster_port = free_port(), free_port()
    mlflow_ui = f"http://127.0.0.1:{mlflow_port}"
    heatmap = artifact_image(mlflow_ui, run_id, HEATMAP, "sharpe by regime")
    assert len(heatmap.value) < 1000  # under the UI's limit for inline Markdown
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key="performance_matrix",
                metadata={
                    "heatmap": heatmap,
                    "heatmap_png": image_md(png, "sharpe by regime"),
                    "sharpe_by_regime": table(pivot(_matrix())),
                },
            )
        )
    mlflow = _serve(mlflow_server_command(mlflow_port, uri, data / "mlflow" / "artifacts"),
                    mlflow_environment(), data / "mlflow")  # fmt: skip
    web_cmd = dagster_ui_commands(dagster_port, ROOT / "workspace.yaml")[0]
    web = _serve(web_cmd, ui_environment(home), ROOT)
    try:
        deadline = time.monotonic() + START_BOUND_S
        dagster_ui = f"http://127.0.0.1:{dagster_port}"
        while time.monotonic() < deadline and not (
            _answers(f"{mlflow_ui}/health") and _answers(f"{dagster_ui}/server_info")
        ):
            time.sleep(1)
        image_url = heatmap.value.split("](", 1)[1].rstrip(")")
        with urllib.request.urlopen(image_url, timeout=30) as r:  # the MLflow UI serves it
            assert r.read() == png
        # the UI's "Join the Dagster community" dialog would cover the page: seen already
        nux = urllib.request.Request(
            f"{dagster_ui}/graphql", data=json.dumps({"query": "mutation { setNuxSeen }"}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(nux, timeout=30) as r:
            assert "errors" not in json.load(r)
        page = f"{dagster_ui}/assets/performance_matrix"
        dom = _chromium(tmp_path / "profile", "--dump-dom", page)
        assert dom.returncode == 0, dom.stderr[-2000:]
        # the heatmap is an <img> on the page, fetched from the MLflow UI, not behind a button
        assert f'src="{image_url.replace("&", "&amp;")}"' in dom.stdout
        assert 'alt="sharpe by regime"' in dom.stdout
        # the self-contained copy (over 1,000 characters) stays one click away
        assert dom.stdout.count("[Show Markdown]") == 1
        assert "sma_cross" in dom.stdout  # the table entry, inline
        shot = tmp_path / "asset.png"
        out = _chromium(tmp_path / "profile2", f"--screenshot={shot}", page)
        assert out.returncode == 0 and shot.stat().st_size > 10_000
        keep = Path(request.config.rootpath) / ".pytest_cache" / "dagster-asset-heatmap.png"
        keep.parent.mkdir(exist_ok=True)
        shutil.copy(shot, keep)
        print(f"screenshot: {keep}")
    finally:
        _stop(web)
        _stop(mlflow)
