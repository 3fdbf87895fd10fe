"""``trading-pipeline mlflow-ui`` serves MLflow over the embedded store on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from trading_pipeline.cli import main
from trading_pipeline.local_servers import mlflow_environment, mlflow_server_command
from trading_pipeline_tests.servers import free_port, port_free, processes_with

pytestmark = pytest.mark.slow  # an MLflow store

ROOT = Path(__file__).resolve().parents[2]
START_BOUND_S = 150.0
STOP_BOUND_S = 30.0


def _get(port: int, path: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status), response.read().decode(errors="replace")
    except OSError:
        return None


def test_server_command_binds_loopback_over_the_embedded_store(tmp_path: Path) -> None:
    cmd = mlflow_server_command(5999, "sqlite:////x/mlflow.db", tmp_path / "artifacts")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "5999"
    assert cmd[cmd.index("--backend-store-uri") + 1] == "sqlite:////x/mlflow.db"
    assert cmd[cmd.index("--artifacts-destination") + 1].startswith("file://")
    assert cmd[cmd.index("--workers") + 1] == "1"
    env = mlflow_environment({"PATH": "/bin"})
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_bad_port_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mlflow-ui", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --port must be between 1 and 65535, got 0"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mlflow_ui_answers_then_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    exe = shutil.which("trading-pipeline", path=str(Path(sys.executable).parent))
    assert exe is not None
    env = {**os.environ, "TP_DATA_DIR": str(data)}
    env.pop("TP_MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [exe, "mlflow-ui", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    needle = f"TP_DATA_DIR={data}".encode()
    try:
        deadline = time.monotonic() + START_BOUND_S
        health = None
        while health is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            health = _get(port, "/health")
        assert health is not None, "the MLflow server never answered /health"
        assert health[0] == 200
        page = _get(port, "/")
        assert page is not None and page[0] == 200 and "<html" in page[1].lower()
        assert (data / "mlflow" / "mlflow.db").is_file()  # the embedded store, under the data dir
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_BOUND_S) == 0
        deadline = time.monotonic() + 15
        while (not port_free(port) or processes_with(needle)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert port_free(port) and _get(port, "/health") is None
        assert processes_with(needle) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
