"""The CLI entry of the discovery tests, in-process and as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli_main(argv: list[str]) -> int:
    """``trading-pipeline`` in-process."""
    from trading_pipeline import cli

    return cli.main(argv)


CLI_SNIPPET = (
    "import sys; from trading_pipeline_tests.discovery.helpers import cli_main; "
    "sys.exit(cli_main(sys.argv[1:]))"
)


def cli_process(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI in a subprocess (same interpreter), stdout/stderr captured."""
    root = Path(__file__).resolve().parents[2]
    full_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", CLI_SNIPPET, *argv],
        cwd=root,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
