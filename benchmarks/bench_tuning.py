"""Walk-forward tuning throughput: sma_cross on 5 years of hourly bars.

Measures finished walk-forward trials per second (each trial = one parameter set scored on
its fold's train window in 3 segments, TPE sampling, median pruning, storage writes):

* the bare objective (the engine alone, no Optuna) as the anchor;
* the embedded journal-file storage, buffered (the default: trials written in batches) and
  unbuffered (every trial written as it finishes);
* PostgreSQL (when a server answers on 127.0.0.1:5432) with one and with two worker
  processes sharing one study.

Data: the real BTC/USDT hourly history (Roshan's freqtrade feather, last 5 years) when
``../shared/data/real`` is present, else a seeded synthetic random walk of the same length.
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


def journal(bars: pl.DataFrame, trials: int, batch: int, tmp: Path | None) -> tuple[float, int]:
    """Walk-forward trials/s on the journal file under ``tmp`` (``None``: in memory)."""
    import optuna

    from trading_pipeline.discovery.storage import open_storage
    from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
    from trading_pipeline.strategies.registry import get_family

    fam = get_family("sma_cross")
    storage = (
        optuna.storages.InMemoryStorage()
        if tmp is None
        else open_storage(f"journal:{tmp / f'bench-{batch}.log'}", data_dir=tmp)
    )
    spec = make_spec(bars, fam, series="bench-BTCUSDT-1h", interval="1h", walk=WalkForward(FOLDS))
    run = tune(bars, fam, spec=spec, storage=storage, n_trials=trials, seed=0, batch=batch)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100, help="trials per fold (4 folds)")
    ap.add_argument("--worker", nargs=3, metavar=("STUDY", "URL", "TRIALS"))
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    bars, what = load_bars()
    print(f"bench-tuning: sma_cross, {what}, {FOLDS} walk-forward folds, 3 train segments")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    base = anchor(bars, 200)
    print(f"  anchor: objective alone (engine, no Optuna)       {base:8.1f} evaluations/s")
    with tempfile.TemporaryDirectory() as tmp:
        rate, n = journal(bars, args.trials, 50, Path(tmp))
        print(
            f"  journal file, buffered (batch 50), 1 process     {rate:8.1f} trials/s "
            f"({n} trials; {rate:.1f}/s per core; {rate / base:.2f}× the anchor)"
        )
        rate1, n1 = journal(bars, args.trials, 1, Path(tmp))
        print(
            f"  journal file, unbuffered (batch 1), 1 process   {rate1:8.1f} trials/s ({n1} trials)"
        )
    mem, _ = journal(bars, args.trials, 10**9, None)
    print(f"  in-memory study (no storage writes), 1 process  {mem:8.1f} trials/s")
    print(
        f"  TPE sampling alone (constant objective)         {tpe_alone(args.trials):8.1f} "
        "trials/s  <- the ceiling Optuna's sampler sets"
    )
    target = 100.0
    verdict = "meets" if rate >= target else "MISSES"
    print(f"  target ≥ {target:.0f} trials/s per core on embedded storage: {verdict}")
    if not pg_available():
        print("  PostgreSQL: skipped (no server on 127.0.0.1:5432)")
        return
    one = postgres(bars, args.trials, 1)
    two = postgres(bars, args.trials, 2)
    print(f"  PostgreSQL, 1 worker                              {one:8.1f} trials/s")
    print(
        f"  PostgreSQL, 2 workers together                    {two:8.1f} trials/s "
        f"(speed-up {two / one:.2f}×, {two / 2:.1f}/s per worker)"
    )


if __name__ == "__main__":
    main()
