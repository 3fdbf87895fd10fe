"""``trading-pipeline select`` (the decision at a time, from stored data) and ``mlflow-ui``.

``select [--at TIMESTAMP]`` replays the 5-minute decision at ``TIMESTAMP`` (default: now) on
the Parquet store only, using bars that had closed by then (``open_time + interval <= at``),
the current champion and the choices in force *before* ``at`` from the decisions table. It is
for audits and replays: the same store, registry and table give the same answer, and nothing
is written unless ``--record`` is given.

``mlflow-ui`` serves the MLflow UI over the embedded store (``<data dir>/mlflow/mlflow.db``,
artifacts beside it) on 127.0.0.1, as ``ops_cli.ui`` does for Dagster: a child process group
that SIGINT/SIGTERM stop. MLflow is imported only inside the commands that need it.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_pipeline.errors import UserInputError
from trading_pipeline.ops_cli import serve_child
from trading_pipeline.settings import Settings


def parse_at(value: str | None, *, now: datetime | None = None) -> datetime:
    """``--at`` as an aware UTC time (ISO 8601; a time without zone is UTC; default now)."""
    if value is None:
        return (now or datetime.now(UTC)).astimezone(UTC)
    text = value.strip()
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UserInputError(
            f"--at must be an ISO time such as 2024-03-01T12:00Z, got {value!r}"
        ) from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def tracking_uri_for(settings: Settings) -> str:
    """The selector's MLflow URI: ``TP_MLFLOW_TRACKING_URI`` or the embedded store."""
    from trading_pipeline.selector.decide import embedded_tracking_uri

    return settings.mlflow_tracking_uri or embedded_tracking_uri(settings.data_dir)


def select_at(
    settings: Settings,
    at: datetime,
    *,
    record: bool = False,
    persist: int | None = None,
    margin: float | None = None,
) -> Any:
    """The decision the loop would make at ``at`` from stored data (a ``TickResult``)."""
    from trading_pipeline.bots.spec import FLEET
    from trading_pipeline.market.candles import CandleError
    from trading_pipeline.selector.decide import Decider, Hysteresis, open_registry
    from trading_pipeline.selector.decisions import DecisionStore, decisions_path
    from trading_pipeline.selector.live import StoreCandles

    defaults = Hysteresis()
    try:
        hysteresis = Hysteresis(
            persist=defaults.persist if persist is None else persist,
            margin=defaults.margin if margin is None else margin,
        )
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    registry = open_registry(tracking_uri_for(settings))  # None before anything was registered
    decider = Decider(
        registry,
        StoreCandles(settings.history_dir),
        DecisionStore(decisions_path(settings.data_dir)),
        hysteresis=hysteresis,
        fleet=FLEET,
    )
    try:
        return decider.tick(at, record=record, replay=True)
    except (CandleError, ValueError) as exc:
        raise UserInputError(str(exc).splitlines()[0]) from None


def _print_text(result: Any) -> None:
    ref = result.model
    model = f"{ref.name} v{ref.version}" if ref.version is not None else f"{ref.name}: none"
    regime = result.decisions[0].regime if result.decisions else "unknown"
    print(f"decision at {result.at.isoformat()} · model {model} · regime {regime}")
    for d in result.decisions:
        p = d.probabilities.get(d.choice, 0.0)
        flag = "CHANGED" if d.changed else "kept"
        print(f"  {d.bot:<5} {d.choice:<40} p={p:.3f} {flag:<7} {d.reason}")


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
    ]


def mlflow_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: telemetry off, no background job runner (a faster start)."""
    env = dict(os.environ if base is None else base)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "1"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


def run_mlflow_ui(port: int, settings: Settings) -> int:
    """Serve the MLflow UI over the embedded store until SIGINT/SIGTERM; the child's exit code."""
    if not 0 < port < 65536:
        raise UserInputError(f"--port must be between 1 and 65535, got {port}")
    uri = tracking_uri_for(settings)
    if uri.startswith(("http://", "https://")):
        raise UserInputError(f"TP_MLFLOW_TRACKING_URI is a server already: open {uri}")
    artifacts = settings.data_dir / "mlflow" / "artifacts"  # where MlflowTracker puts them
    artifacts.mkdir(parents=True, exist_ok=True)
    return serve_child(
        mlflow_server_command(port, uri, artifacts),
        env=mlflow_environment(),
        cwd=settings.data_dir / "mlflow",  # anything MLflow drops in its cwd stays in the store
    )


def register(app: typer.Typer) -> None:
    """Add ``select`` and ``mlflow-ui`` to the top-level app."""

    @app.command("select")
    def select(
        at: Annotated[
            str | None,
            typer.Option("--at", help="Decide as of this UTC time (ISO 8601); default now."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        record: Annotated[
            bool, typer.Option("--record", help="Record the decision in the decisions table.")
        ] = False,
        persist: Annotated[
            int | None,
            typer.Option("--persist", help="Ticks with new inputs a new pick must lead (3)."),
        ] = None,
        margin: Annotated[
            float | None,
            typer.Option("--margin", help="Probability lead that switches at once (0.15)."),
        ] = None,
    ) -> None:
        """The selector's decision per bot at a time, from stored bars only (audits, replays)."""
        when = parse_at(at)
        settings = Settings.from_env()
        result = select_at(settings, when, record=record, persist=persist, margin=margin)
        if as_json:
            ref = result.model
            payload = {
                "at": result.at.isoformat(),
                "model": {"name": ref.name, "version": ref.version, "run_id": ref.run_id},
                "recorded": record,
                "changed": list(result.changed),
                "decisions": [d.to_json() for d in result.decisions],
            }
            print(json.dumps(payload, indent=2, sort_keys=True))
        else:
            _print_text(result)

    @app.command("mlflow-ui")
    def mlflow_ui(
        port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1.")] = 5000,
    ) -> None:
        """Start the MLflow UI over the embedded store on 127.0.0.1; Ctrl-C or SIGTERM stops it."""
        raise typer.Exit(run_mlflow_ui(port, Settings.from_env()))
