"""Walk-forward tuning throughput per family: batched (fused) against one trial at a time.

A trial is one parameter set scored on its fold's train window in 3 segments with median
pruning, on 5 years of hourly bars cut into 4 walk-forward folds, written to the embedded
journal-file storage. For every family:

* one at a time: Optuna's own loop with TPE, one ``signals()`` + simulation per trial (the
  path families without a compiled form still take);
* batched, TPE: the same trials (identical study), each evaluated by the fused kernel;
* batched, random / QMC: 64 trials asked at a time and evaluated in one fused call;
* fast-random: 64 sets drawn per fused call without Optuna's per-trial objects (pruning
  decided as the median pruner would, finished trials appended in batches of 50), on the
  journal and on an in-memory study (what the journal's per-trial writes cost).

Numba runs on one thread, so every figure is per core. The bare objective (the engine alone,
no Optuna) and TPE sampling alone are printed as anchors for sma_cross; ``--postgres`` adds
the PostgreSQL one- and two-worker runs (when a server answers on 127.0.0.1:5432).
Data: the real BTC/USDT hourly history (last 5 years) when the shared data is present
(``TP_REAL_DATA``), else a seeded synthetic random walk of the same length.
Run: ``make bench-tuning`` (or ``.venv/bin/python benchmarks/bench_tuning.py [--trials N]``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
REAL = (
    Path(os.environ.get("TP_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
    / "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
)
BARS = 5 * 8760
PG_URL = os.environ.get("TP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
FOLDS = 4


def load_bars() -> tuple[pl.DataFrame, str]:
    if REAL.exists():
        from trading_pipeline.market.candles import read_candle_file

        return read_candle_file(REAL).tail(BARS), f"real {REAL.name} (last {BARS} bars)"
    sys.path.insert(0, str(ROOT))
    from trading_pipeline_tests.fakes.bars import START_2021, make_bars

    return make_bars(
        BARS, seed=1, trend="walk_traded", start=START_2021
    ), f"synthetic random walk ({BARS} bars)"


def pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


def anchor(bars: pl.DataFrame, n: int) -> float:
    """Objective evaluations per second without Optuna (random valid parameters)."""
    from trading_pipeline.discovery.evaluate import Evaluator
    from trading_pipeline.discovery.tuning import WalkForward
    from trading_pipeline.strategies.registry import get_family

    fam = get_family("sma_cross")
    ev = Evaluator(bars, fam, interval="1h")
    folds = WalkForward(folds=FOLDS).split(bars.height)
    rng = np.random.default_rng(0)
    f = folds[0]
    edges = np.linspace(f.train_start, f.train_stop, 4).astype(int)
    bounds = [(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    ev.warm_up(f.train_start, f.train_stop)
    t0 = time.perf_counter()
    for _ in range(n):
        fast = int(rng.integers(2, 200))
        slow = int(rng.integers(fast + 1, 401))
        ev.segments(fam.validate({"fast": fast, "slow": slow}), bounds)
    return n / (time.perf_counter() - t0)


def tpe_alone(trials: int) -> float:
    """TPE sampling of sma_cross's space with a constant objective (no backtest, no storage)."""
    import optuna

    from trading_pipeline.strategies.registry import get_family

    fam = get_family("sma_cross")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for k in range(FOLDS):
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=k)
        )
        study.optimize(lambda t: float(len(fam.suggest(t))) + rng.random(), n_trials=trials)
    return trials * FOLDS / (time.perf_counter() - t0)


def journal(
    bars: pl.DataFrame,
    trials: int,
    batch: int,
    tmp: Path | None,
    family: str = "sma_cross",
    sampler: str = "tpe",
    ask: int | None = 0,
) -> tuple[float, int]:
    """Walk-forward trials/s on the journal file under ``tmp`` (``None``: in memory)."""
    import optuna

    from trading_pipeline.discovery.storage import open_storage
    from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
    from trading_pipeline.strategies.registry import get_family

    fam = get_family(family)
    tag = f"{family}-{sampler}-{ask}-{batch}"
    storage = (
        optuna.storages.InMemoryStorage()
        if tmp is None
        else open_storage(f"journal:{tmp / f'bench-{tag}.log'}", data_dir=tmp)
    )
    spec = make_spec(bars, fam, series=f"bench-{tag}", interval="1h", walk=WalkForward(FOLDS))
    run = tune(
        bars,
        fam,
        spec=spec,
        storage=storage,
        n_trials=trials,
        seed=0,
        batch=batch,
        sampler=sampler,
        ask=ask,
    )
    return run.trials_run / run.seconds, run.trials_run


def worker_main(study: str, url: str, trials: int) -> None:
    """Subprocess entry: join ``study`` on ``url`` and print the run as JSON."""
    from trading_pipeline.discovery.storage import open_storage
    from trading_pipeline.discovery.tuning import work
    from trading_pipeline.strategies.registry import get_family

    warnings.filterwarnings("ignore", message=".*heartbeat_interval.*")
    bars, _ = load_bars()
    storage = open_storage(url, data_dir=tempfile.gettempdir())
    run = work(bars, get_family("sma_cross"), study_group=study, storage=storage, n_trials=trials)
    print(json.dumps({"trials": run.trials_run, "seconds": run.seconds}))


def postgres(bars: pl.DataFrame, trials: int, workers: int) -> float:
    """Trials per second of ``workers`` processes together on one PostgreSQL study."""
    import optuna

    from trading_pipeline.discovery.storage import open_storage
    from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
    from trading_pipeline.strategies.registry import get_family

    fam = get_family("sma_cross")
    storage = open_storage(PG_URL, data_dir=tempfile.gettempdir())
    series = f"bench{uuid.uuid4().hex[:6]}-BTCUSDT-1h"
    spec = make_spec(bars, fam, series=series, interval="1h", walk=WalkForward(FOLDS))
    tune(bars, fam, spec=spec, storage=storage, n_trials=0)
    per = trials // workers
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", spec.study_group, PG_URL, str(per)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(workers)
    ]
    runs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    for k in range(FOLDS):
        optuna.delete_study(study_name=spec.fold_study(k), storage=storage)
    return sum(r["trials"] for r in runs) / max(r["seconds"] for r in runs)


FAMILIES = (
    "sma_cross",
    "ema_cross",
    "macd",
    "momentum",
    "rsi_reversion",
    "donchian_breakout",
    "bollinger_reversion",
)
MODES = (  # label, sampler, ask (0 = one signals() per trial in Optuna's loop), share, journal
    ("one at a time, TPE", "tpe", 0, 4, True),
    ("batched TPE (ask 1)", "tpe", 1, 4, True),
    ("batched random (64)", "random", 64, 1, True),
    ("batched QMC (64)", "qmc", 64, 4, True),
    ("fast-random (64)", "fast-random", 64, 1, True),
    ("fast-random, memory", "fast-random", 64, 1, False),
)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def per_family(bars: pl.DataFrame, trials: int, tmp: Path) -> None:
    """The table: trials/s per family and mode (journal storage, batches of 50 written)."""
    print(
        f"  trials/s per core, {FOLDS} folds, journal storage unless 'memory' "
        f"({trials} trials per fold batched, a quarter of that for TPE and QMC)"
    )
    print(f"  {'family':20s}" + "".join(f"{m[0]:>22s}" for m in MODES))
    for fam in FAMILIES:
        journal(bars, 2, 50, tmp, fam, "random", 8)  # compile / load the kernels
        journal(bars, 2, 50, tmp, fam, "tpe", 0)
        cells = []
        for _, sampler, ask, share, on_disk in MODES:
            where = tmp if on_disk else None
            rate, _ = journal(bars, max(10, trials // share), 50, where, fam, sampler, ask)
            cells.append(f"{rate:22,.0f}")
        print(f"  {fam:20s}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=500, help="batched trials per fold (4 folds)")
    ap.add_argument("--postgres", action="store_true", help="add the PostgreSQL worker runs")
    ap.add_argument("--worker", nargs=3, metavar=("STUDY", "URL", "TRIALS"))
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    import numba
    import optuna

    numba.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    bars, what = load_bars()
    print(f"bench-tuning: {what}, {FOLDS} walk-forward folds, 3 train segments")
    print(f"machine: {load()} (shared machine: figures are under that load)")
    base = anchor(bars, 200)
    print(f"  anchor: sma_cross objective alone (no Optuna)   {base:8.1f} evaluations/s")
    print(f"  anchor: TPE sampling alone (constant objective)  {tpe_alone(100):8.1f} trials/s")
    with tempfile.TemporaryDirectory() as tmp:
        per_family(bars, args.trials, Path(tmp))
    print("  targets: ≥ 1,000 trials/s per core on sma_cross, ≥ 300 on the slowest family")
    print(f"done: {load()}")
    if not args.postgres:
        return
    if not pg_available():
        print("  PostgreSQL: skipped (no server on 127.0.0.1:5432)")
        return
    one = postgres(bars, 100, 1)
    two = postgres(bars, 100, 2)
    print(f"  PostgreSQL, 1 worker                              {one:8.1f} trials/s")
    print(
        f"  PostgreSQL, 2 workers together                    {two:8.1f} trials/s "
        f"(speed-up {two / one:.2f}×, {two / 2:.1f}/s per worker)"
    )


if __name__ == "__main__":
    main()
