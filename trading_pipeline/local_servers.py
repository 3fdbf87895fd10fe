"""The local UIs (Dagster's webserver and daemon, the MLflow server) as child process groups.

Core, not orchestration: it never imports Dagster or MLflow, it runs their servers. The Dagster
UI is ``dagster-webserver`` and ``dagster-daemon`` side by side (what ``dagster dev`` did before
it was superseded by ``dg dev``, without its deprecation warning and without the ``dg`` CLI),
in one process group of their own, with the signal dispositions reset to their defaults (a
process started in the background inherits SIGINT ignored, and the servers would then ignore
Ctrl-C and SIGTERM), bound to 127.0.0.1; SIGINT/SIGTERM are forwarded to the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from trading_pipeline.errors import UserInputError
from trading_pipeline.settings import DataLayout

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 20.0


def _reset_signals() -> None:
    """Run in the child before exec: default SIGINT/SIGTERM dispositions, unblocked."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def _program(name: str, module: str) -> list[str]:
    exe = Path(sys.executable).with_name(name)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def dagster_ui_commands(port: int, workspace: Path) -> list[list[str]]:
    """The webserver (bound to 127.0.0.1) and the daemon (schedules, sensors, run queue)."""
    web = _program("dagster-webserver", "dagster_webserver")
    daemon = _program("dagster-daemon", "dagster._daemon")
    return [
        [*web, "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
        [*daemon, "run", "-w", str(workspace)],
    ]


def default_dagster_home(env: dict[str, str] | None = None) -> Path:
    """An exported ``DAGSTER_HOME``, else the project's ``dagster_home/``."""
    value = (os.environ if env is None else env).get("DAGSTER_HOME", "").strip()
    return Path(value) if value else PROJECT_ROOT / "dagster_home"


def ui_environment(dagster_home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: an absolute ``DAGSTER_HOME`` and telemetry off."""
    env = dict(os.environ if base is None else base)
    env["DAGSTER_HOME"] = str(dagster_home.resolve())
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    env["DO_NOT_TRACK"] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def run_ui(
    port: int, *, dagster_home: Path, workspace: Path, extra_args: Sequence[str] = ()
) -> int:
    """Start the Dagster webserver and daemon and wait for them; SIGINT/SIGTERM stop both."""
    if not 0 < port < 65536:
        raise UserInputError(f"--port must be between 1 and 65535, got {port}")
    if not workspace.is_file():
        raise UserInputError(f"workspace file not found: {workspace}")
    if not (dagster_home / "dagster.yaml").is_file():
        raise UserInputError(f"no dagster.yaml in {dagster_home}")
    web, daemon = dagster_ui_commands(port, workspace)
    return serve_child(
        [*web, *extra_args],
        env=ui_environment(dagster_home),
        cwd=workspace.parent,
        beside=[daemon],
    )


def serve_child(
    command: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    beside: Sequence[Sequence[str]] = (),
) -> int:
    """Run a server as a child in its own process group (with the ``beside`` commands in the
    same group) until it exits or we get SIGINT or SIGTERM (forwarded to the whole group:
    webservers, daemons and workers share it); nothing is left running afterwards. A stop we
    asked for is a clean exit (0)."""
    child = subprocess.Popen(
        list(command),
        env=env,
        cwd=cwd,
        preexec_fn=_reset_signals,  # only resets dispositions and the mask: no locks taken
        process_group=0,  # a group of its own (not the terminal's: Ctrl-C reaches us, we forward)
    )
    for other in beside:  # in the same group, so one signal stops them all
        subprocess.Popen(
            list(other), env=env, cwd=cwd, preexec_fn=_reset_signals, process_group=child.pid
        )

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            code = child.wait()
        except BaseException:
            forward(signal.SIGTERM, None)
            code = child.wait(timeout=STOP_TIMEOUT_S)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM, 130, 143) else code


def mlflow_server_command(port: int, backend_uri: str, artifacts_dir: Path) -> list[str]:
    """``mlflow server`` bound to 127.0.0.1 with one worker (starts in about 8 s, not 19)."""
    exe = Path(sys.executable).with_name("mlflow")
    program = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    return [
        *program,
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        artifacts_dir.resolve().as_uri(),
        "--workers",
        "1",
        # the UI opens on model training, not GenAI, on a browser's first visit
        "--app-name",
        "training-view",
    ]


def mlflow_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: telemetry off, no background job runner (a faster start)."""
    env = dict(os.environ if base is None else base)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "1"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


def run_mlflow_ui(port: int, layout: DataLayout) -> int:
    """Serve the MLflow UI over the layout's store until SIGINT/SIGTERM; the child's exit code."""
    if not 0 < port < 65536:
        raise UserInputError(f"--port must be between 1 and 65535, got {port}")
    uri = layout.mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        raise UserInputError(f"TP_MLFLOW_TRACKING_URI is a server already: open {uri}")
    artifacts = layout.mlflow_artifacts_dir  # where MlflowTracker puts them
    artifacts.mkdir(parents=True, exist_ok=True)
    return serve_child(
        mlflow_server_command(port, uri, artifacts),
        env=mlflow_environment(),
        cwd=layout.mlflow_dir,  # anything MLflow drops in its cwd stays in the store
    )
