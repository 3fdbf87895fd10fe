"""``trading-pipeline studies list | show``: the Optuna storage's study groups, for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trading_pipeline.cli.options import DataDirOpt, JsonOpt, StorageOpt, settings_from
from trading_pipeline.errors import UserInputError

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

studies = typer.Typer(help="the tuned study groups in the Optuna storage", no_args_is_help=True)
APPS = [(studies, "studies")]


def _storage(storage: str | None, data_dir: Path | None) -> BaseStorage:
    # lazy: optuna costs ~1 s, loaded with these verbs only
    from trading_pipeline.discovery.storage import open_storage

    settings = settings_from(data_dir)
    return open_storage(
        storage or settings.layout.optuna_storage_url, data_dir=settings.data_dir, create=False
    )


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if x is None else fmt.format(x)


@studies.command("list")
def list_(
    storage: StorageOpt = None,
    data_dir: DataDirOpt = None,
    family: Annotated[
        str | None, typer.Option("--family", metavar="NAME", help="only this family")
    ] = None,
    series: Annotated[
        str | None,
        typer.Option("--series", metavar="KEY", help="only this series (spot-BTCUSDT-1h)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every study group: family, series, folds, trials, cost model, best in-sample objective.

    The objective is in-sample (each fold's train window): what the sampler maximised, not a
    performance figure. ``tune`` and the performance matrix report out of sample.
    """
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.discovery.study_list import list_groups

    rows = [
        g
        for g in list_groups(_storage(storage, data_dir))
        if (family is None or g.family == family) and (series is None or g.series == series)
    ]
    if as_json:
        print(json.dumps({"groups": [g.to_json() for g in rows]}))
        return
    if not rows:
        print("no study groups" + (" match the filter" if family or series else " yet"))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="study groups (objective: in-sample, per fold)")
    for col in ("group", "family", "series", "folds", "trials", "fee", "slippage",
                "best in-sample per fold", "started"):  # fmt: skip
        table.add_column(col, justify="right" if col in {"folds", "trials"} else "left")
    for g in rows:
        table.add_row(
            g.group,
            g.family,
            g.series,
            f"{g.studies}/{g.folds}",
            f"{g.trials:,}",
            _num(g.fee, "{:.4%}"),
            _num(g.slippage, "{:.4%}"),
            " ".join(_num(v, "{:.2f}") for v in g.best_in_sample),
            g.started.strftime("%Y-%m-%d %H:%M") if g.started else "-",
        )
    Console(width=200).print(table)


@studies.command("show")
def show(
    group: Annotated[str, typer.Argument(metavar="GROUP", help="a group from `studies list`")],
    storage: StorageOpt = None,
    data_dir: DataDirOpt = None,
    top: Annotated[int, typer.Option("--top", metavar="N", help="trials shown per fold")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """One study group, fold by fold: windows (bar indices), trials, the best trials' params."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.discovery.study_list import show_group

    if top < 1:
        raise UserInputError("--top must be >= 1")
    folds = show_group(_storage(storage, data_dir), group, top=top)
    if as_json:
        print(json.dumps({"group": group, "folds": [f.to_json() for f in folds]}))
        return
    print(f"{group}: {len(folds)} fold studies (objective: in-sample, each fold's train window)")
    for f in folds:
        train = f"[{f.train[0]}, {f.train[1]})" if f.train else "?"
        test = f"[{f.test[0]}, {f.test[1]})" if f.test else "?"
        print(f"  fold {f.fold}: {f.complete}/{f.trials} trials complete; train bars {train}, "
              f"test bars {test}")  # fmt: skip
        for t in f.top:
            params = ", ".join(f"{k}={v}" for k, v in sorted(t["params"].items()))
            print(f"    #{t['trial']:<5} {_num(t['in_sample_objective'])}  {params}")


@studies.command("dashboard")
def dashboard(
    storage: StorageOpt = None,
    data_dir: DataDirOpt = None,
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="port on 127.0.0.1")] = 8080,
    writable: Annotated[
        bool, typer.Option("--writable", help="allow notes, feedback and deleting studies")
    ] = False,
) -> None:
    """Serve optuna-dashboard over the study storage on 127.0.0.1 (read-only unless --writable);
    Ctrl-C or SIGTERM stops it."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.discovery.dashboard import make_dashboard_server
    from trading_pipeline.serving import serve_in_foreground

    if not 1 <= port <= 65535:
        raise UserInputError(f"--port must be 1-65535, got {port}")
    try:
        server = make_dashboard_server(_storage(storage, data_dir), port=port, writable=writable)
    except OSError as exc:
        raise UserInputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None

    mode = "writable" if writable else "read-only"
    serve_in_foreground(
        server, f"optuna-dashboard ({mode}) on http://127.0.0.1:{port}/ (Ctrl-C stops)"
    )
