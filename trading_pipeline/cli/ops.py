"""Operational verbs: ``ui`` (the Dagster UI on 127.0.0.1), ``data-layout`` and ``version``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trading_pipeline.cli.options import (
    BotsDirOpt,
    DataDirOpt,
    HistoryDirOpt,
    JsonOpt,
    PortOpt,
    settings_from,
)
from trading_pipeline.local_servers import PROJECT_ROOT

verbs = typer.Typer()
APPS = [(verbs, None)]


@verbs.command("ui")
def ui(
    port: PortOpt = 3000,
    dagster_home: Annotated[
        Path | None,
        typer.Option(
            "--dagster-home",
            metavar="DIR",
            help="instance folder holding dagster.yaml (default: DAGSTER_HOME, else "
            "./dagster_home)",
        ),
    ] = None,
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", metavar="FILE", help="workspace file")
    ] = PROJECT_ROOT / "workspace.yaml",
) -> None:
    """Start the Dagster UI (webserver and daemon) on 127.0.0.1; Ctrl-C or SIGTERM stops it."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.local_servers import default_dagster_home, run_ui

    home = (dagster_home or default_dagster_home()).resolve()
    code = run_ui(port, dagster_home=home, workspace=workspace.resolve())
    raise typer.Exit(code)


@verbs.command("data-layout")
def data_layout(
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    bots_dir: BotsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where every artifact lives for these flags and the environment (flag > env > default)."""
    rows = settings_from(data_dir, history_dir, bots_dir).layout.table()
    if as_json:
        print(json.dumps(dict(rows), indent=2))
        return
    width = max(len(name) for name, _ in rows)
    for name, where in rows:
        print(f"{name:<{width}}  {where}")


@verbs.command("version")
def version() -> None:
    """Print the version."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline import __version__

    print(__version__)
