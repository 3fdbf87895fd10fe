"""Selector verbs: ``selector train``, ``select`` (the decision at a time) and ``mlflow-ui``.

``selector train`` builds the decision rows from discovery's outputs (the data layout's
``top_strategies.json``, the Optuna storage, the history store), trains, judges on the held-out
period beside the baselines and registers behind the promotion gate.

``select [--at TIMESTAMP]`` replays the 5-minute decision at ``TIMESTAMP`` (default: now) on
the Parquet store only, using bars that had closed by then (``open_time + interval <= at``),
the current champion and the choices in force *before* ``at`` from the decisions table. It is
for audits and replays: the same store, registry and table give the same answer, and nothing
is written unless ``--record`` is given.

``mlflow-ui`` serves the MLflow UI over the embedded store (``local_servers.run_mlflow_ui``).
MLflow, Optuna and scikit-learn load inside the commands.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trading_pipeline.cli.options import (
    DataDirOpt,
    HistoryDirOpt,
    JsonOpt,
    PortOpt,
    TrackingUriOpt,
    finite,
    settings_from,
)
from trading_pipeline.errors import UserInputError

if TYPE_CHECKING:
    from trading_pipeline.settings import DataLayout

HoldoutOpt = Annotated[
    float,
    typer.Option(
        "--holdout",
        min=0.0,
        max=1.0,
        callback=finite,
        metavar="FRACTION",
        help="share of the decision rows held out (the end)",
    ),
]
MaxCandOpt = Annotated[
    int,
    typer.Option(
        "--max-candidates", min=1, metavar="N", help="candidate strategies at most (cash is extra)"
    ),
]
EXPERIMENT = "strategy-selector"

verbs = typer.Typer()
selector_app = typer.Typer(help="The strategy selector: train it.", no_args_is_help=True)
APPS = [(selector_app, "selector"), (verbs, None)]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:+.4f}"
    return str(v)


@selector_app.command("train")
def train_cmd(
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    holdout: HoldoutOpt = 0.25,
    max_candidates: MaxCandOpt = 8,
    tracking_uri: TrackingUriOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train the selector on discovery's out-of-sample history and register it (gated)."""
    import os
    import warnings

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.tracking import check_tracking_uri

    layout = settings_from(data_dir, history_dir).layout
    check_tracking_uri(tracking_uri or layout.mlflow_tracking_uri)
    if not 0.0 < holdout < 1.0:
        raise UserInputError("--holdout must be between 0 and 1")
    if max_candidates < 1:
        raise UserInputError("--max-candidates must be at least 1")
    top_file = layout.top_strategies_path
    if not top_file.is_file():
        raise UserInputError(f"no {top_file}: run discovery (top_strategies) first")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings("ignore", module="mlflow")

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.spec import current_fleet
    from trading_pipeline.discovery.catalog import StudyCatalog
    from trading_pipeline.selector.dataset import build_dataset, results_from_catalog
    from trading_pipeline.selector.registry import MlflowRegistry
    from trading_pipeline.selector.train import TrainSettings, comparison_markdown, train

    fleet = current_fleet().bots
    # every listed study a bot may run, capped by development returns only (never discovery's
    # whole-history order); the same cut-off build_dataset chooses the candidates before
    found = results_from_catalog(StudyCatalog(layout), fleet=fleet, holdout_fraction=holdout)
    ds = build_dataset(
        found.results,
        found.bars,
        max_candidates=max_candidates,
        provenance=found.provenance,
        holdout_fraction=holdout,  # the candidates are chosen before this held-out period
        fleet=fleet,
    )
    ds.save(layout.selector_dir)
    if tracking_uri is None and layout.uses_embedded_mlflow:
        layout.mlflow_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or layout.mlflow_tracking_uri
    registry = MlflowRegistry(uri, EXPERIMENT)
    report = train(
        ds,
        registry=registry,
        settings=TrainSettings(holdout_fraction=holdout),
        tags={"trigger": "cli"},
        dataset_source=layout.selector_dir,
    )
    if json_:
        print(json.dumps(report.to_json(), indent=1, default=str))
        return
    print(
        f"selector v{report.version} ({report.config.label}, {report.model.decision_rule}), MLflow run {report.run_id}; "
        f"held out {report.holdout_start} .. {report.holdout_end} ({report.n_holdout} rows)"
    )
    print(comparison_markdown(report))
    gate = report.gate
    if gate is not None:
        verdict = "promoted to champion" if gate.promote else "NOT promoted"
        print(f"gate: {verdict}: {gate.reason}")


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
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.market.bars import check_day

    check_day(t.date(), "--at")
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def select_at(
    layout: DataLayout,
    at: datetime,
    *,
    record: bool = False,
    persist: int | None = None,
    margin: float | None = None,
) -> Any:
    """The decision the loop would make at ``at`` from stored data (a ``TickResult``)."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.spec import current_fleet
    from trading_pipeline.market.candles import CandleError
    from trading_pipeline.selector.decide import Decider, Hysteresis, open_registry
    from trading_pipeline.selector.decisions import DecisionStore
    from trading_pipeline.selector.live import StoreCandles
    from trading_pipeline.selector.news_state import stored_news_state

    defaults = Hysteresis()
    try:
        hysteresis = Hysteresis(
            persist=defaults.persist if persist is None else persist,
            margin=defaults.margin if margin is None else margin,
        )
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    registry = open_registry(layout.mlflow_tracking_uri)  # None before anything was registered
    decider = Decider(
        registry,
        StoreCandles(layout.history_dir),
        DecisionStore(layout.decisions_path),
        hysteresis=hysteresis,
        fleet=current_fleet().bots,
        state_fn=stored_news_state(layout),
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


@verbs.command("select")
def select(
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="TIME", help="decide as of this UTC time (ISO 8601); default now"
        ),
    ] = None,
    as_json: JsonOpt = False,
    record: Annotated[
        bool, typer.Option("--record", help="record the decision in the decisions table")
    ] = False,
    persist: Annotated[
        int | None,
        typer.Option(
            "--persist", min=0, metavar="N", help="ticks with new inputs a new pick must lead (3)"
        ),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            "--margin",
            min=0.0,
            max=1.0,
            callback=finite,
            metavar="P",
            help="probability lead that switches at once (0.15)",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
) -> None:
    """The selector's decision per bot at a time, from stored bars only (audits, replays)."""
    when = parse_at(at)
    layout = settings_from(data_dir, history_dir).layout
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stderr: errors only
    result = select_at(layout, when, record=record, persist=persist, margin=margin)
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


@verbs.command("mlflow-ui")
def mlflow_ui(port: PortOpt = 5000, data_dir: DataDirOpt = None) -> None:
    """Start the MLflow UI over the embedded store on 127.0.0.1; Ctrl-C or SIGTERM stops it."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.local_servers import run_mlflow_ui

    raise typer.Exit(run_mlflow_ui(port, settings_from(data_dir).layout))
