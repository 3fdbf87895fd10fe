"""Operational verbs: ``ui`` (the Dagster UI on 127.0.0.1).

This module is core, not orchestration: it never imports Dagster. It launches ``dagster dev``
as a child process in its own process group, with the signal dispositions reset to their
defaults (a process started in the background inherits SIGINT ignored, and ``dagster dev``
then ignores Ctrl-C and SIGTERM), and forwards SIGINT/SIGTERM to that group.
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
from typing import Annotated

import typer

from trading_pipeline.errors import UserInputError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 20.0


def _reset_signals() -> None:
    """Run in the child before exec: default SIGINT/SIGTERM dispositions, unblocked."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def dagster_dev_command(port: int, workspace: Path) -> list[str]:
    """The ``dagster dev`` command line, bound to 127.0.0.1."""
    exe = Path(sys.executable).with_name("dagster")
    program = [str(exe)] if exe.exists() else [sys.executable, "-m", "dagster"]
    return [*program, "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)]


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
    """Start ``dagster dev`` and wait for it; SIGINT/SIGTERM stop its whole process group."""
    if not 0 < port < 65536:
        raise UserInputError(f"--port must be between 1 and 65535, got {port}")
    if not workspace.is_file():
        raise UserInputError(f"workspace file not found: {workspace}")
    if not (dagster_home / "dagster.yaml").is_file():
        raise UserInputError(f"no dagster.yaml in {dagster_home}")
    return serve_child(
        [*dagster_dev_command(port, workspace), *extra_args],
        env=ui_environment(dagster_home),
        cwd=workspace.parent,
    )


def serve_child(command: Sequence[str], *, env: dict[str, str], cwd: Path) -> int:
    """Run a server as a child in its own process group until it exits or we get SIGINT or
    SIGTERM (forwarded to the whole group: webservers, daemons and workers share it); nothing
    is left running afterwards. A stop we asked for is a clean exit (0)."""
    child = subprocess.Popen(
        list(command),
        env=env,
        cwd=cwd,
        preexec_fn=_reset_signals,  # only resets dispositions and the mask: no locks taken
        start_new_session=True,
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


def register(app: typer.Typer) -> None:
    """Add the operational verbs to the top-level app."""

    @app.command("ui")
    def ui(
        port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1.")] = 3000,
        dagster_home: Annotated[
            Path,
            typer.Option(
                "--dagster-home",
                help="Instance folder holding dagster.yaml (runs and schedules are kept there).",
            ),
        ] = PROJECT_ROOT / "dagster_home",
        workspace: Annotated[
            Path, typer.Option("--workspace", "-w", help="Workspace file.")
        ] = PROJECT_ROOT / "workspace.yaml",
    ) -> None:
        """Start the Dagster UI (dagster dev) on 127.0.0.1; Ctrl-C or SIGTERM stops it."""
        code = run_ui(port, dagster_home=dagster_home.resolve(), workspace=workspace.resolve())
        raise typer.Exit(code)
