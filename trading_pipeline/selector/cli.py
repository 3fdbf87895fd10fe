"""``trading-pipeline selector train``: build the decision rows from discovery's outputs, train,
judge on the held-out period beside the baselines, register behind the promotion gate.

Reads the settings: the data dir (``<data>/discovery/top_strategies.json``, the Optuna storage,
the history store, the MLflow store). MLflow, Optuna and scikit-learn load inside the command.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from trading_pipeline.backtest.cli import DataDirOpt, JsonOpt
from trading_pipeline.errors import UserInputError

HoldoutOpt = Annotated[
    float, typer.Option("--holdout", help="share of the decision rows held out (the end)")
]
MaxCandOpt = Annotated[
    int, typer.Option("--max-candidates", help="candidate strategies at most (cash is extra)")
]
TrackingOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow URI (default TP_MLFLOW_TRACKING_URI or SQLite)"),
]
EXPERIMENT = "strategy-selector"

selector_app = typer.Typer(
    name="selector", help="The strategy selector: train it.", no_args_is_help=True
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:+.4f}"
    return str(v)


@selector_app.command("train")
def train_cmd(
    data_dir: DataDirOpt = None,
    holdout: HoldoutOpt = 0.25,
    max_candidates: MaxCandOpt = 8,
    tracking_uri: TrackingOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train the selector on discovery's out-of-sample history and register it (gated)."""
    import os
    import warnings

    from trading_pipeline.settings import Settings

    settings = Settings.from_env().with_overrides(data_dir=data_dir)
    layout = settings.layout
    if not 0.0 < holdout < 1.0:
        raise UserInputError("--holdout must be between 0 and 1")
    if max_candidates < 1:
        raise UserInputError("--max-candidates must be at least 1")
    if not layout.top_strategies_path.is_file():
        raise UserInputError(
            f"no {layout.top_strategies_path}: run discovery (top_strategies) first"
        )
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings("ignore", module="mlflow")

    from trading_pipeline.bots.spec import FLEET
    from trading_pipeline.discovery.catalog import StudyCatalog
    from trading_pipeline.selector.dataset import build_dataset, results_from_catalog
    from trading_pipeline.selector.registry import MlflowRegistry
    from trading_pipeline.selector.train import TrainSettings, comparison_markdown, train

    found = results_from_catalog(StudyCatalog(layout))
    ds = build_dataset(
        found.results,
        found.bars,
        max_candidates=max_candidates,
        provenance=found.provenance,
        holdout_fraction=holdout,  # the candidates are chosen before this held-out period
        fleet=FLEET,
    )
    ds.save(layout.selector_dir)
    uri = tracking_uri or layout.ensure_mlflow_dir()
    registry = MlflowRegistry(uri, EXPERIMENT)
    report = train(
        ds,
        registry=registry,
        settings=TrainSettings(holdout_fraction=holdout),
        tags={"trigger": "cli"},
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


def register(app: typer.Typer) -> None:
    """Add ``selector train`` to the top-level app."""
    app.add_typer(selector_app, name="selector")
