"""Discovery verbs: ``tune`` (a walk-forward study, tracked in MLflow) and ``tune-worker``
(join an existing study from another process or host).

Data options are the backtest verbs' own (``--symbol/--interval`` from the store or
``--data FILE``). Optuna, MLflow and matplotlib are imported inside the commands.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trading_pipeline.cli.options import (
    FEE,
    SLIPPAGE_BPS,
    DataDirOpt,
    DataOpt,
    FeeOpt,
    FromOpt,
    HistoryDirOpt,
    IntervalOpt,
    JsonOpt,
    MarketOpt,
    SlippageOpt,
    StorageOpt,
    StrategyFileOpt,
    StrategyOpt,
    SymbolOpt,
    ToOpt,
    TrackingUriOpt,
    bars_from_options,
    family_from_options,
    settings_from,
)
from trading_pipeline.errors import UserInputError

if TYPE_CHECKING:
    from trading_pipeline.discovery.results import StudyResult
    from trading_pipeline.settings import DataLayout

verbs = typer.Typer()
APPS = [(verbs, None)]

TrialsOpt = Annotated[
    int, typer.Option("--trials", min=0, metavar="N", help="finished trials per fold (target)")
]
FoldsOpt = Annotated[int, typer.Option("--folds", min=2, metavar="N", help="walk-forward folds")]
SeedOpt = Annotated[
    int, typer.Option("--seed", metavar="N", help="sampler seed (fold k uses seed + k)")
]
AnchoredOpt = Annotated[bool, typer.Option("--anchored", help="train windows start at bar 0")]
TrainBarsOpt = Annotated[
    int | None,
    typer.Option("--train-bars", min=1, metavar="N", help="rolling train window length (bars)"),
]
EmbargoOpt = Annotated[
    int, typer.Option("--embargo", min=0, metavar="N", help="bars skipped between train and test")
]
SamplerOpt = Annotated[
    str,
    typer.Option(
        "--sampler",
        metavar="NAME",
        help="tpe (learns from every trial), random, qmc (scrambled Sobol) or fast-random "
        "(random sets drawn and pruned without Optuna's per-trial objects: the fastest)",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch",
        metavar="N",
        help="trials evaluated per fused call (0: one at a time through signals(); "
        "default 1 for tpe, 64 for the others)",
    ),
]


def series_key(*, market: str, symbol: str | None, interval: str, data: Path | None) -> str:
    """``spot-BTCUSDT-1h`` for the store, ``file-<stem>-<interval>`` for a file."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.history.layout import Series

    if data is not None:
        stem = re.sub(r"[^A-Za-z0-9_]", "_", data.name.split(".")[0]) or "data"
        return Series("file", stem, interval).key
    assert symbol is not None
    return Series(market, symbol.upper(), interval).key


def _quiet() -> None:
    """Optuna's INFO lines, its experimental-feature warnings and its "trial failed" warning (the
    failure itself is raised as one line) stay off the output."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is raised, not logged
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) >= 1 else f"{v:.4f}"
    return str(v)


def _print_human(summary: dict[str, Any]) -> None:
    print(f"study {summary['study']}  ({summary['n_trials']} trials, out of sample only)")
    for f in summary["folds"]:
        print(
            f"  fold {f['fold']}: train {f['train'][0]}..{f['train'][1]} "
            f"test {f['test'][0]}..{f['test'][1]}  test sharpe {_fmt(f['test_sharpe'])}  "
            f"params {json.dumps(f['params'], sort_keys=True)}"
        )
    flat = summary.get("oos_flat_restart") or {}
    print("strategy: one account over the test windows, positions carried over the folds")
    print(f"{'metric':<14}{'strategy':>14}{'buy&hold':>14}{'flat restart':>14}")
    for k in ("sharpe", "total_return", "cagr", "max_drawdown", "trades", "exposure", "bars"):
        print(
            f"{k:<14}{_fmt(summary['oos'].get(k)):>14}{_fmt(summary['buy_and_hold'].get(k)):>14}"
            f"{_fmt(flat.get(k, '')):>14}"
        )
    print("(flat restart, secondary: each test window traded from cash on its own)")
    d = summary["deflated_sharpe"]
    verdict = "significant" if d["significant"] else "NOT significant"
    print(f"deflated Sharpe probability {_fmt(d['probability'])} ({verdict} at 0.95)")
    print(f"PBO {_fmt(summary['pbo'])}   consistency {_fmt(summary['consistency'])}")
    print(f"best params (latest fold): {json.dumps(summary['best_params'], sort_keys=True)}")
    if summary.get("mlflow_run_id"):
        print(f"MLflow run {summary['mlflow_run_id']}")


def _track(
    result: StudyResult,
    *,
    tracking_uri: str | None,
    layout: DataLayout,
    storage_url: str,
    data: Path | None,
    market: str,
    symbol: str | None,
    interval: str,
) -> str:
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.discovery.report import (
        EXPERIMENT,
        log_study,
        provenance_from_file,
        provenance_from_store,
    )

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.tracking import MlflowTracker

    if tracking_uri is None and layout.uses_embedded_mlflow:
        layout.mlflow_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or layout.mlflow_tracking_uri
    if data is not None:
        prov = provenance_from_file(data)
    else:
        assert symbol is not None
        prov = provenance_from_store(
            layout.history_dir, market=market, symbol=symbol.upper(), interval=interval
        )
    tracker = MlflowTracker(uri, EXPERIMENT)
    return log_study(tracker, result, storage_url=storage_url, provenance=prov)


@verbs.command()
def tune(
    strategy: StrategyOpt,
    trials: TrialsOpt,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    market: MarketOpt = "spot",
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    data: DataOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    storage: StorageOpt = None,
    folds: FoldsOpt = 4,
    seed: SeedOpt = 0,
    anchored: AnchoredOpt = False,
    train_bars: TrainBarsOpt = None,
    embargo: EmbargoOpt = 0,
    sampler: SamplerOpt = "tpe",
    batch: BatchOpt = None,
    fee: FeeOpt = FEE,
    slippage_bps: SlippageOpt = SLIPPAGE_BPS,
    strategy_file: StrategyFileOpt = None,
    tracking_uri: TrackingUriOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune a strategy walk-forward; report out-of-sample results only, tracked in MLflow."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.backtest.costs import CostModel
    from trading_pipeline.cli.progress import progress_bar
    from trading_pipeline.discovery.batch import check_sampler
    from trading_pipeline.discovery.gate import remember, require_no_lookahead
    from trading_pipeline.discovery.results import collect
    from trading_pipeline.discovery.storage import check_storage_url, open_storage
    from trading_pipeline.discovery.tuning import WalkForward, make_spec
    from trading_pipeline.discovery.tuning import tune as run_tune

    if trials < 0:
        raise UserInputError("--trials must be >= 0")
    check_sampler(sampler, batch)
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.tracking import check_tracking_uri

    settings = settings_from(data_dir, history_dir)
    layout = settings.layout
    check_tracking_uri(tracking_uri or layout.mlflow_tracking_uri)
    family = family_from_options(strategy, strategy_file)
    bars, interval = bars_from_options(
        symbol=symbol,
        interval=interval,
        start=start,
        end=end,
        market=market,
        data=data,
        data_dir=data_dir,
        history_dir=history_dir,
    )
    key = series_key(market=market, symbol=symbol, interval=interval, data=data)
    walk = WalkForward(folds=folds, train_bars=train_bars, anchored=anchored, embargo=embargo)
    costs = CostModel(fee=fee, slippage_bps=slippage_bps)
    spec = make_spec(bars, family, series=key, interval=interval, walk=walk, costs=costs)
    url = check_storage_url(storage or layout.optuna_storage_url)
    if family.inputs == 1:  # a broken strategy fails here, before a study is stored
        family.signals(bars, family.default_params())
    # a leaky family is never tuned; a clean verdict is cached (per code) once the study ran
    audit = require_no_lookahead(family, bars, cache_dir=layout.audits_dir, data=key, write=False)
    _quiet()
    study_storage = open_storage(url, data_dir=settings.data_dir)
    label = f"tune {family.name} {key}: {trials} trials × {folds} folds"
    with progress_bar(label) as advance:
        run_tune(
            bars,
            family,
            spec=spec,
            storage=study_storage,
            n_trials=trials,
            seed=seed,
            sampler=sampler,
            ask=batch,
            progress=advance,
        )
    remember(audit, cache_dir=layout.audits_dir, name=family.name)
    if trials == 0:
        try:
            result = collect(bars, family, spec=spec, storage=study_storage)
        except UserInputError:
            print(f"study {spec.study_group} ready; add trials with tune-worker")
            return
    else:
        result = collect(bars, family, spec=spec, storage=study_storage)
    run_id = _track(
        result,
        tracking_uri=tracking_uri,
        layout=layout,
        storage_url=url,
        data=data,
        market=market,
        symbol=symbol,
        interval=interval,
    )
    summary = {**result.summary(), "mlflow_run_id": run_id}
    if as_json:
        # lazy: loaded with this verb only, so the command line starts fast
        from trading_pipeline.backtest.metrics import json_safe

        print(json.dumps(json_safe(summary), default=str))
    else:
        _print_human(summary)


@verbs.command("tune-worker")
def tune_worker(
    study: Annotated[
        str, typer.Option("--study", metavar="NAME", help="study group name printed by tune")
    ],
    storage: Annotated[
        str, typer.Option("--storage", metavar="URL", help="the shared study storage URL")
    ],
    trials: TrialsOpt,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    market: MarketOpt = "spot",
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    data: DataOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    seed: Annotated[
        int | None, typer.Option("--seed", metavar="N", help="sampler seed (default: random)")
    ] = None,
    sampler: SamplerOpt = "tpe",
    batch: BatchOpt = None,
    strategy_file: StrategyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Join an existing study and add --trials trials to each of its folds."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.cli.progress import progress_bar
    from trading_pipeline.discovery.batch import check_sampler
    from trading_pipeline.discovery.gate import require_no_lookahead
    from trading_pipeline.discovery.storage import open_storage, redact
    from trading_pipeline.discovery.tuning import load_spec, work

    if trials < 1:
        raise UserInputError("--trials must be >= 1")
    check_sampler(sampler, batch)
    settings = settings_from(data_dir, history_dir)
    bars, interval = bars_from_options(
        symbol=symbol,
        interval=interval,
        start=start,
        end=end,
        market=market,
        data=data,
        data_dir=data_dir,
        history_dir=history_dir,
    )
    _quiet()
    study_storage = open_storage(storage, data_dir=settings.data_dir, create=False)
    spec = load_spec(study, study_storage)
    if spec.interval != interval:
        raise UserInputError(f"study {study} is on {spec.interval} bars, not {interval}")
    family = family_from_options(spec.family, strategy_file)
    require_no_lookahead(
        family, bars, cache_dir=settings.layout.audits_dir, data=study, write=False
    )
    with progress_bar(f"tune-worker {study}: {trials} trials × {spec.walk.folds} folds") as advance:
        run = work(
            bars,
            family,
            study_group=study,
            storage=study_storage,
            n_trials=trials,
            seed=seed,
            sampler=sampler,
            ask=batch,
            progress=advance,
        )
    rate = run.trials_run / run.seconds if run.seconds > 0 else 0.0
    out = {
        "study": study,
        "storage": redact(storage),
        "trials": run.trials_run,
        "seconds": run.seconds,
        "trials_per_second": rate,
    }
    if as_json:
        print(json.dumps(out))
    else:
        print(
            f"{study}: {run.trials_run} trials in {run.seconds:.2f} s ({rate:.1f} trials/s)",
            file=sys.stdout,
        )
