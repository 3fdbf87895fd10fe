"""Walk-forward tuning throughput per family: batched (fused) against one trial at a time.

A trial is one parameter set scored on its fold's train window in 3 segments with median
pruning, on 5 years of hourly bars cut into 4 walk-forward folds, written to the embedded
journal-file storage. For every family:

* one at a time: Optuna's own loop with TPE, one ``signals()`` + simulation per trial (the
  path families without a compiled form still take);
* batched, TPE: the same trials (identical study), each evaluated by the fused kernel;
* batched, random / QMC: 64 trials asked at a time and evaluated in one fused call;
* fast-random: 64 sets drawn per fused call without Optuna's per-trial objects (pruning
  decided as the median pruner would), finished trials appended to the journal 50 per append
  (one lock, one fsync); the same with one append per trial (Optuna's own ``add_trials``,
  what the journal cost before), and on an in-memory storage (the reference: no writes).

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
from dataclasses import dataclass
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
    per_trial: bool = False,
) -> Rate:
    """Walk-forward trials/s on the journal file under ``tmp`` (``None``: in memory;
    ``per_trial``: Optuna's plain journal, one append per finished trial)."""
    import optuna
    import optuna.storages.journal

    from trading_pipeline.discovery.storage import open_storage
    from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
    from trading_pipeline.strategies.registry import get_family

    fam = get_family(family)
    tag = f"{family}-{sampler}-{ask}-{batch}"
    if tmp is None:
        storage: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
    elif per_trial:  # Optuna's own journal: add_trials appends (and fsyncs) trial by trial
        tag += "-plain"
        backend = optuna.storages.journal.JournalFileBackend(str(tmp / f"bench-{tag}.log"))
        storage = optuna.storages.journal.JournalStorage(backend)
    else:
        storage = open_storage(f"journal:{tmp / f'bench-{tag}.log'}", data_dir=tmp)
    spec = make_spec(bars, fam, series=f"bench-{tag}", interval="1h", walk=WalkForward(FOLDS))
    wall, cpu = time.perf_counter(), time.process_time()
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
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Rate(run.trials_run / wall, run.trials_run / cpu, run.trials_run)


@dataclass(frozen=True)
class Rate:
    """Trials per second of one whole ``tune()`` call: by the wall clock, and per second of
    this process's CPU time (what one core does, whatever else runs on the machine; waits for
    the disk are not in it, so the wall-clock column is the one that shows them)."""

    wall: float
    cpu: float
    trials: int


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
# label, sampler, ask (0 = one signals() per trial in Optuna's loop), share of the trials,
# storage (journal: batched appends; per-trial: Optuna's plain journal; memory), trials per write
MODES = (
    ("1-at-a-time TPE", "tpe", 0, 4, "journal", 50),
    ("batched TPE", "tpe", 1, 4, "journal", 50),
    ("batched random", "random", 64, 1, "journal", 50),
    ("batched QMC", "qmc", 64, 4, "journal", 50),
    ("fast-random", "fast-random", 64, 1, "journal", 50),
    ("fast-rnd 1 write/trial", "fast-random", 64, 1, "per-trial", 50),
    ("fast-random memory", "fast-random", 64, 1, "memory", 50),
)
FAST, PER_TRIAL, MEMORY, ONE = 4, 5, 6, 0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def per_family(
    bars: pl.DataFrame, trials: int, tmp: Path, families: tuple[str, ...] = FAMILIES
) -> dict[str, list[Rate]]:
    """The tables: trials/s per family and mode (journal file unless 'memory'; finished trials
    written 50-64 per journal append, or one per append in '1 write/trial': Optuna's plain
    journal, what the writes cost before), per CPU second and by the wall clock."""
    print(
        f"  {FOLDS} folds; journal file storage unless 'memory'; batched = 64 trials per fused "
        f"call (TPE: 1); {trials} trials per fold (TPE, QMC: a quarter); one whole tune() each"
    )
    head = (
        f"  {'family':20s}" + "".join(f"{m[0]:>23s}" for m in MODES) + f"{'fast/1-at-a-time':>18s}"
    )
    rates: dict[str, list[Rate]] = {}
    for fam in families:
        journal(bars, 2, 50, tmp, fam, "random", 8)  # compile / load the kernels
        journal(bars, 2, 50, tmp, fam, "tpe", 0)
        row = []
        for _, sampler, ask, share, where, write in MODES:
            at = None if where == "memory" else tmp
            n = max(10, trials // share)
            row.append(journal(bars, n, write, at, fam, sampler, ask, where == "per-trial"))
        rates[fam] = row
        print(f"  {fam}: done ({load()})", flush=True)
    for what in ("cpu", "wall"):
        label = "per CPU second (one core)" if what == "cpu" else "by the wall clock"
        print(f"  trials/s {label}:")
        print(head)
        for fam, row in rates.items():
            vals = [getattr(r, what) for r in row]
            cells = "".join(f"{v:23,.0f}" for v in vals)
            print(f"  {fam:20s}{cells}{vals[FAST] / vals[ONE]:17.1f}×")
    return rates


def verdict(rates: dict[str, list[Rate]]) -> None:
    """The targets, on the journal file, and what batching the writes bought."""
    for what in ("cpu", "wall"):
        fast = {f: getattr(row[FAST], what) for f, row in rates.items()}
        slow_fam = min(fast, key=lambda f: fast[f])
        sma = fast.get("sma_cross", float("nan"))
        ok = "met" if sma >= 1000 and fast[slow_fam] >= 300 else "NOT met"
        print(
            f"  targets on the journal file (fast-random, {what}): sma_cross {sma:,.0f}/s "
            f"(≥ 1,000), slowest {slow_fam} {fast[slow_fam]:,.0f}/s (≥ 300): {ok}"
        )
    for fam, row in rates.items():
        print(
            f"    {fam:20s} journal / memory {row[FAST].cpu / row[MEMORY].cpu:5.2f} (cpu) "
            f"{row[FAST].wall / row[MEMORY].wall:5.2f} (wall); batched writes / one write per "
            f"trial {row[FAST].wall / row[PER_TRIAL].wall:5.2f}× (wall)"
        )


def workers_speedup(trials: int) -> None:
    """Two tuning workers against one on the same study (``bench_workers``): the embedded
    journal file and the scale-out storage (Optuna's journal on Redis), each worker's trials/s,
    beside a pure-Python CPU burn measured at the same moment (the machine's own ceiling)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_workers

    print(f"tuning workers: 1 vs 2 processes on one sma_cross study, {trials} trials per fold, "
          f"{bench_workers.WORKERS_BATCH} trials written per batch; {bench_workers.load()}")  # fmt: skip
    print(bench_workers.HEADER)
    bench_workers.prime()
    print(bench_workers.burn(), flush=True)
    for kind in ("journal-file", bench_workers.SCALE_OUT):
        print(bench_workers.compare(kind, trials, bench_workers.WORKERS_BATCH), flush=True)
    print(bench_workers.burn(), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=500, help="batched trials per fold (4 folds)")
    ap.add_argument(
        "--family", action="append", choices=FAMILIES, help="only these families (repeatable)"
    )
    ap.add_argument("--postgres", action="store_true", help="add the PostgreSQL worker runs")
    ap.add_argument(
        "--workers-trials", type=int, default=120, metavar="N",
        help="trials per fold of the 1-vs-2 worker speed-up (bench_workers); 0 skips it",
    )  # fmt: skip
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
        rates = per_family(bars, args.trials, Path(tmp), tuple(args.family or FAMILIES))
    verdict(rates)
    if args.workers_trials > 0:
        workers_speedup(args.workers_trials)
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
