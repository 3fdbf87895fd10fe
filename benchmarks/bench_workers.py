"""Tuning workers that scale: 1 and 2 worker processes on one study, per storage.

Each worker is a process running the project's own ``work()`` (what ``tune-worker`` runs) on
one sma_cross study group (4 folds, TPE, one trial at a time, so every trial is a storage
round trip: what the storage, not the batching, decides). Storages:

* ``journal-file`` — the embedded default (``journal:PATH``, batched appends);
* ``journal-redis`` — Optuna's journal on Redis (``JournalRedisBackend``, 127.0.0.1:6379);
* ``grpc-proxy`` — Optuna's gRPC storage proxy (``run_grpc_proxy_server``) over PostgreSQL, the
  workers talking gRPC to it;
* ``postgres-rdb`` — ``RDBStorage`` on PostgreSQL directly.

Printed per storage: each worker's trials/s alone and together, and the speed-up of two workers
over one (target ≥ 1.8× on 2 cores). A storage whose server is absent is skipped with a line.

    python benchmarks/bench_workers.py [--trials 240] [--storage journal-file ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("TP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FOLDS = 4
BARS = 8760  # one year of hourly bars: the study's own cost stays small beside the storage's
# one core per worker: numba's parallel kernels and polars otherwise spread one worker over both
# cores, and then a second worker has nothing left to scale onto
ONE_THREAD = {**os.environ, "NUMBA_NUM_THREADS": "1", "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1"}
STORAGES = ("journal-file", "journal-redis", "grpc-proxy", "postgres-rdb")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bars() -> Any:
    from trading_pipeline.regimes.synthetic import synthetic_bars

    script = (("sideways", 2000), ("bull", 2500), ("bear", 2200), ("bull", 2060))
    return synthetic_bars(script, seed=7)


def open_kind(kind: str, where: str) -> Any:
    """The storage object a worker (or the set-up) opens for ``kind``."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    from trading_pipeline.discovery.storage import open_storage

    if kind == "journal-file":
        return open_storage(f"journal:{where}", data_dir=tempfile.gettempdir())
    if kind == "journal-redis":
        backend = optuna.storages.journal.JournalRedisBackend(where)
        return optuna.storages.JournalStorage(backend)
    if kind == "grpc-proxy":
        host, port = where.split(":")
        return optuna.storages.GrpcStorageProxy(host=host, port=int(port))
    return open_storage(where, data_dir=tempfile.gettempdir())


def worker(kind: str, where: str, group: str, trials: int, seed: int) -> None:
    """One worker process: ``trials`` trials on each fold study of ``group``; prints JSON."""
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from trading_pipeline.discovery.tuning import work
    from trading_pipeline.strategies.registry import get_family

    storage = open_kind(kind, where)
    t0 = time.perf_counter()
    run = work(
        bars(), get_family("sma_cross"), study_group=group, storage=storage, n_trials=trials,
        seed=seed, sampler="tpe", batch=1,
    )  # fmt: skip
    print(json.dumps({"trials": run.trials_run, "seconds": time.perf_counter() - t0}))


def _grpc_server(port: int) -> None:
    import optuna

    from trading_pipeline.discovery.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(PG_URL, data_dir=tempfile.gettempdir())
    optuna.storages.run_grpc_proxy_server(storage, host="127.0.0.1", port=port)


def measure(kind: str, trials: int, workers: int) -> dict[str, Any] | str:
    """Trials/s of ``workers`` processes on one fresh study (``trials`` per fold in all)."""
    from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
    from trading_pipeline.strategies.registry import get_family

    server = None
    tmp = Path(tempfile.mkdtemp(prefix="tp-bench-workers-"))
    if kind == "journal-file":
        where = str(tmp / "studies.log")
    elif kind == "journal-redis":
        if not _port_open(6379):
            return "skipped: no Redis on 127.0.0.1:6379"
        where = REDIS_URL
    elif kind == "postgres-rdb":
        if not _port_open(5432):
            return "skipped: no PostgreSQL on 127.0.0.1:5432"
        where = PG_URL
    else:
        if not _port_open(5432):
            return "skipped: no PostgreSQL on 127.0.0.1:5432 (the proxy's backend)"
        port = _free_port()
        server = mp.get_context("spawn").Process(target=_grpc_server, args=(port,), daemon=True)
        server.start()
        deadline = time.monotonic() + 60
        while not _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        where = f"127.0.0.1:{port}"
    try:
        fam = get_family("sma_cross")
        b = bars()
        series = f"bench{uuid.uuid4().hex[:8]}-SYN-1h"
        spec = make_spec(b, fam, series=series, interval="1h", walk=WalkForward(FOLDS))
        tune(b, fam, spec=spec, storage=open_kind(kind, where), n_trials=0)
        per = trials // workers
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    kind,
                    where,
                    spec.study_group,
                    str(per),
                    str(i + 1),
                ],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=ONE_THREAD,
            )
            for i in range(workers)
        ]
        runs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    finally:
        if server is not None:
            server.terminate()
    each = [r["trials"] / r["seconds"] for r in runs]
    total = sum(r["trials"] for r in runs) / max(r["seconds"] for r in runs)
    return {"workers": workers, "each": each, "total": total}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=240, help="trials per fold, all workers")
    ap.add_argument("--storage", action="append", choices=STORAGES, help="only these")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, where, group, trials, seed = args.worker
        worker(kind, where, group, int(trials), int(seed))
        return 0
    sys.path.insert(0, str(ROOT))
    one, five, _ = os.getloadavg()
    print(f"sma_cross, TPE one trial at a time, {FOLDS} folds, {BARS} bars, {args.trials} trials "
          f"per fold; load average {one:.2f}/{five:.2f} on {os.cpu_count()} cores")  # fmt: skip
    print(
        f"{'storage':14} {'1 worker':>10} {'2 workers (each)':>26} {'together':>10} {'speed-up':>9}"
    )
    # prime numba's on-disk cache so no measured process pays a compile the other did not
    measure("journal-file", 4, 1)
    for kind in args.storage or STORAGES:
        alone = measure(kind, args.trials, 1)
        if isinstance(alone, str):
            print(f"{kind:14} {alone}")
            continue
        pair = measure(kind, args.trials, 2)
        assert not isinstance(pair, str)
        each = " + ".join(f"{x:.0f}" for x in pair["each"])
        print(f"{kind:14} {alone['total']:>8.0f}/s {each:>22} /s {pair['total']:>8.0f}/s "
              f"{pair['total'] / alone['total']:>8.2f}×")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
