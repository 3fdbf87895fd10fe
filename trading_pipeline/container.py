"""The platform image's entrypoint: one image, every role, chosen by the first argument.

    python -m trading_pipeline.container ROLE [ARGS…]

===============  =======================================================================
role             runs
===============  =======================================================================
fetch            ``trading-pipeline fetch ARGS`` (the one-shot history fetcher)
cli              ``trading-pipeline ARGS`` (any verb: ``cli backtest …``)
bot              ``trading-pipeline bot run ARGS`` (one bot runner; paper unless --live)
code-location    Dagster's gRPC code server for ``trading_pipeline.definitions`` on port 4000
webserver        the Dagster UI on port 3000, over the code location's gRPC server
daemon           the Dagster daemon (schedules, sensors, run queue, automation)
mlflow           an MLflow tracking server on port 5000 (``TP_MLFLOW_BACKEND_URI``)
===============  =======================================================================

Servers bind ``TP_BIND_HOST``: 127.0.0.1 unless set (a container sets 0.0.0.0 so its port can
be published; see docker-compose.yml). The caches numba and matplotlib write are made writable
for any user before anything is imported (the image runs as uid 10001 over a root-owned venv).
The role's program replaces this process (``exec``), so signals reach it directly.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_WORKSPACE = "/app/deploy/workspace-grpc.yaml"


def _caches(env: dict[str, str]) -> None:
    tmp = Path(tempfile.gettempdir())
    for name, sub in (("NUMBA_CACHE_DIR", "numba-cache"), ("MPLCONFIGDIR", "matplotlib")):
        path = Path(env.get(name) or tmp / f"trading-pipeline-{sub}")
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)


def command(role: str, args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The program and arguments ``role`` runs; ``ValueError`` for an unknown role."""
    host = env.get("TP_BIND_HOST", "127.0.0.1")
    workspace = env.get("TP_DAGSTER_WORKSPACE", DEFAULT_WORKSPACE)
    if role == "fetch":
        return ["trading-pipeline", "fetch", *args]
    if role == "cli":
        return ["trading-pipeline", *args]
    if role == "bot":
        return ["trading-pipeline", "bot", "run", *args]
    if role == "code-location":
        port = env.get("TP_CODE_LOCATION_PORT", "4000")
        return ["dagster", "code-server", "start", "-h", host, "-p", port,
                "-m", "trading_pipeline.definitions", *args]  # fmt: skip
    if role == "webserver":
        return ["dagster-webserver", "-h", host, "-p", env.get("TP_WEBSERVER_PORT", "3000"),
                "-w", workspace, *args]  # fmt: skip
    if role == "daemon":
        return ["dagster-daemon", "run", "-w", workspace, *args]
    if role == "mlflow":
        backend = env.get("TP_MLFLOW_BACKEND_URI") or "sqlite:///" + str(
            Path(env.get("TP_DATA_DIR", "/data")) / "mlflow" / "mlflow.db"
        )
        artifacts = env.get("TP_MLFLOW_ARTIFACTS", str(Path(env.get("TP_DATA_DIR", "/data"))
                                                       / "mlflow" / "artifacts"))  # fmt: skip
        return ["mlflow", "server", "--host", host, "--port", env.get("TP_MLFLOW_PORT", "5000"),
                "--backend-store-uri", backend, "--artifacts-destination", artifacts,
                "--app-name", "training-view", *args]  # fmt: skip
    raise ValueError(
        f"unknown role {role!r}: use fetch, cli, bot, code-location, webserver, daemon or mlflow"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if args else 2
    env = dict(os.environ)
    try:
        cmd = command(args[0], args[1:], env)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _caches(env)
    if args[0] == "mlflow":
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        Path(cmd[cmd.index("--artifacts-destination") + 1]).mkdir(parents=True, exist_ok=True)
    program = shutil.which(cmd[0], path=env.get("PATH"))
    if program is None:
        print(f"error: {cmd[0]} is not installed in this image", file=sys.stderr)
        return 1
    os.execve(program, cmd, env)
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    raise SystemExit(main())
