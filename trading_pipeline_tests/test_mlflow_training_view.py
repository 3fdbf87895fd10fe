"""The project's MLflow experiments open as model training, not GenAI, in the real MLflow UI.

A real ``mlflow server`` (the command ``trading-pipeline mlflow-ui`` runs) over a SQLite store
in tmp, a study run logged through :class:`MlflowTracker`, the experiment page rendered in
headless Chromium. MLflow 3.17's UI shows the view its sidebar switch selects
(``workflowType``: ``genai`` by default, ``machine_learning`` = "Model training"); the
experiment itself carries ``mlflow.experimentKind=custom_model_development``, the tag the UI's
own kind selector writes. The screenshot is kept as ``.pytest_cache/mlflow-training-view.png``.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from trading_pipeline.links import mlflow_run_url
from trading_pipeline.local_servers import mlflow_environment, mlflow_server_command
from trading_pipeline.tracking import (
    EXPERIMENT_KIND_TAG,
    TRAINING_KIND,
    DatasetRef,
    MlflowTracker,
    default_tracking_uri,
)
from trading_pipeline_tests.servers import free_port

pytestmark = pytest.mark.slow  # an MLflow server and a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START_BOUND_S = 150.0


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return int(r.status) == 200
    except OSError:
        return False


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=15000",
             "--window-size=1400,900"]  # fmt: skip
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=180
    )


def _text(dom: str) -> str:
    """The rendered page's visible text, one ``|`` between elements."""
    body = re.sub(r"<(style|script)\b.*?</\1>", "", dom, flags=re.S)
    return re.sub(r"(\s*\|\s*)+", " | ", html.unescape(re.sub(r"<[^>]+>", " | ", body)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.timeout(600)
def test_experiment_page_shows_the_training_view(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    uri = default_tracking_uri(data)
    tracker = MlflowTracker(uri, "strategy-discovery")
    exp = tracker.client.get_experiment(tracker.experiment_id)
    assert exp.tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    run_id = tracker.start_run("sma_cross-v1-spot-SYNUSDT-1h", description="out of sample only")
    tracker.log_metrics(run_id, {"oos_sharpe": 1.25})
    tracker.log_metric_steps(run_id, "fold_test_sharpe", [0.4, 1.1, 0.9])
    tracker.log_dataset(
        run_id, DatasetRef("spot-SYNUSDT-1h bars", str(tmp_path), "0123456789abcdef")
    )
    tracker.end_run(run_id)

    port = free_port()
    server = subprocess.Popen(
        mlflow_server_command(port, uri, data / "mlflow" / "artifacts"),
        env=mlflow_environment(),
        cwd=data / "mlflow",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the workers stop with it
    )
    try:
        deadline = time.monotonic() + START_BOUND_S
        while not _healthy(port) and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.5)
        assert _healthy(port), "the MLflow server never answered /health"
        url = (
            f"http://127.0.0.1:{port}/#/experiments/{tracker.experiment_id}"
            "?workflowType=machine_learning"
        )
        # a first visit (a fresh browser profile) through the project's link: the training view
        dom = _chromium(tmp_path / "profile", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        text = _text(dom.stdout)
        # the training view: the Runs table with the run, its dataset and the Models tab
        assert "Runs - Experiment" in text  # the page's title: it opened on the Runs tab
        assert " | Runs | Models | " in text
        assert "sma_cross-v1-spot-SYNUSDT-1h" in text
        assert "spot-SYNUSDT-1h bars" in text  # the dataset input, in the Dataset column
        # not the GenAI view: no trace overview, no "Evaluations"
        for genai in ("Token Usage", "Latency", "Evaluation runs", "Evaluations"):
            assert genai not in text, f"{genai!r} on the experiment page"
        # a first visit to the bare experiment URL (a fresh browser: nothing remembered): 3.17's
        # UI takes the view from its per-browser switch (localStorage ``mlflow.workflowType_v1``,
        # default "genai") whatever the kind tag says; the server the project runs
        # (``--app-name training-view``, mlflow_ui_app.py) presets that switch to model training
        bare = _chromium(
            tmp_path / "profile-bare", "--dump-dom",
            f"http://127.0.0.1:{port}/#/experiments/{tracker.experiment_id}",
        )  # fmt: skip
        assert bare.returncode == 0, bare.stderr[-2000:]
        bare_text = _text(bare.stdout)
        assert "Runs - Experiment" in bare_text and " | Runs | Models | " in bare_text
        assert "sma_cross-v1-spot-SYNUSDT-1h" in bare_text
        for genai in ("Token Usage", "Latency", "Evaluations"):
            assert genai not in bare_text, f"{genai!r} on a first visit to the bare URL"
        # a run's link, as Dagster metadata and the fleet page give it, opens in the same view
        link = mlflow_run_url(f"http://127.0.0.1:{port}", run_id, tracker.experiment_id)
        page = _chromium(tmp_path / "profile3", "--dump-dom", link)
        assert page.returncode == 0, page.stderr[-2000:]
        run_text = _text(page.stdout)
        assert " | Runs | Models | " in run_text and "out of sample only" in run_text
        assert "Evaluations" not in run_text
        shot = tmp_path / "view.png"
        out = _chromium(tmp_path / "profile2", f"--screenshot={shot}", url)
        assert out.returncode == 0 and shot.stat().st_size > 10_000
        keep = Path(request.config.rootpath) / ".pytest_cache" / "mlflow-training-view.png"
        keep.parent.mkdir(exist_ok=True)
        shutil.copy(shot, keep)
        print(f"screenshot: {keep}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
