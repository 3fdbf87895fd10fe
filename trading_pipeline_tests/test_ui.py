"""``trading-pipeline ui`` serves the Dagster UI on 127.0.0.1 and stops on SIGTERM by its PID."""

from __future__ import annotations

import json
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
from trading_pipeline.local_servers import (
    dagster_ui_commands,
    default_dagster_home,
    ui_environment,
)
from trading_pipeline_tests.servers import free_port, port_free, processes_with

pytestmark = pytest.mark.slow  # subprocesses

ROOT = Path(__file__).resolve().parents[1]
START_BOUND_S = 120.0
STOP_BOUND_S = 30.0


def _graphql_version(port: int) -> str | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": "{ version }"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return str(json.load(response)["data"]["version"])
    except (OSError, ValueError, KeyError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _processes_using(home: Path) -> list[int]:
    """PIDs whose environment names ``home`` (the UI's processes all inherit DAGSTER_HOME)."""
    return processes_with(f"DAGSTER_HOME={home}".encode())


def test_ui_command_line_binds_loopback_and_sets_home(tmp_path: Path) -> None:
    cmd, daemon = dagster_ui_commands(3999, ROOT / "workspace.yaml")
    assert Path(cmd[0]).name == "dagster-webserver" and "dev" not in cmd  # not `dagster dev`
    assert cmd[cmd.index("-h") + 1] == "127.0.0.1" and cmd[cmd.index("-p") + 1] == "3999"
    assert Path(daemon[0]).name == "dagster-daemon" and daemon[1] == "run"
    assert default_dagster_home({"DAGSTER_HOME": str(tmp_path)}) == tmp_path
    assert default_dagster_home({}) == ROOT / "dagster_home"
    env = ui_environment(Path("dagster_home"), base={"PATH": "/bin"})
    assert Path(env["DAGSTER_HOME"]).is_absolute()
    assert env["DAGSTER_HOME"].endswith("dagster_home")


def test_ui_honours_an_exported_dagster_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # a folder with no dagster.yaml
    assert main(["ui", "--port", str(free_port())]) == 2
    assert capsys.readouterr().err.strip() == f"error: no dagster.yaml in {tmp_path}"


def test_ui_bad_port_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ui_answers_graphql_then_stops_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # An instance of its own, so the test leaves no runs or ticks in the project's dagster_home.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    exe = shutil.which("trading-pipeline", path=str(Path(sys.executable).parent))
    assert exe is not None
    proc = subprocess.Popen(
        [exe, "ui", "--port", str(port), "--dagster-home", str(home)],
        cwd=ROOT,
        env={**os.environ, "TP_DATA_DIR": str(tmp_path / "data")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # As from a script in the background: SIGINT ignored by the parent shell.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + START_BOUND_S
        version = None
        while version is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            version = _graphql_version(port)
        assert version is not None, "the UI never answered /graphql"
        assert version.split(".")[0] == "1"
        names = [_cmdline(pid) for pid in _processes_using(home)]
        assert any("dagster-webserver" in n for n in names)
        assert any("dagster-daemon" in n for n in names)  # the daemon runs beside the UI
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_BOUND_S)
        assert code == 0
        deadline = time.monotonic() + 10
        while not port_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert port_free(port)
        assert _graphql_version(port) is None
        while _processes_using(home) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_using(home) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
