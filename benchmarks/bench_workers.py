"""Tuning workers that scale: 1 and 2 worker processes on one study, per storage.

Each worker is a process running the project's own ``work()`` (what ``tune-worker`` runs) on
one sma_cross study group (4 folds, TPE, one trial at a time, so every trial is a storage
round trip: what the storage, not the batching, decides). Storages:

* ``journal-file`` — the embedded default (``journal:PATH``, batched appends);
* ``journal-redis`` — Optuna's journal on Redis (``redis://…``: ``JournalRedisBackend``,
  batched appends, 127.0.0.1:6379);
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
ONE_THREAD = {
    **os.environ,
    "NUMBA_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}
STORAGES = ("journal-file", "journal-redis", "grpc-proxy", "postgres-rdb")
SCALE_OUT = "journal-redis"  # the storage the README's scale-out mode uses for studies
WORKERS_BATCH = 10  # finished trials a worker writes at a time (``tune-worker``'s default: 50)


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
    if kind == "grpc-proxy":
        host, port = where.split(":")
        return optuna.storages.GrpcStorageProxy(host=host, port=int(port))
    return open_storage(where, data_dir=tempfile.gettempdir())


def worker(kind: str, where: str, group: str, trials: int, seed: int, batch: int) -> None:
    """One worker process: ``trials`` trials on each fold study of ``group``; prints JSON.

    Start-up (imports, the bars, loading the compiled kernels: paid once per process, not per
    trial) happens before the clock starts; the worker then says ``ready`` and waits for
    ``go`` on stdin, so the workers of one measurement run their trials at the same time."""
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from trading_pipeline.discovery.evaluate import Evaluator
    from trading_pipeline.discovery.tuning import work
    from trading_pipeline.strategies.registry import get_family

    t_start = time.perf_counter()
    storage = open_kind(kind, where)
    b = bars()
    fam = get_family("sma_cross")
    Evaluator(b, fam, interval="1h").warm_up(0, len(b) // 2)
    print(json.dumps({"ready": time.perf_counter() - t_start}), flush=True)
    sys.stdin.readline()
    t0, c0 = time.time(), time.process_time()
    run = work(
        b, fam, study_group=group, storage=storage, n_trials=trials, seed=seed, sampler="tpe",
        batch=batch,
    )  # fmt: skip
    cpu = time.process_time() - c0
    print(json.dumps({"trials": run.trials_run, "start": t0, "end": time.time(), "cpu": cpu}))


def _grpc_server(port: int) -> None:
    import optuna

    from trading_pipeline.discovery.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(PG_URL, data_dir=tempfile.gettempdir())
    optuna.storages.run_grpc_proxy_server(storage, host="127.0.0.1", port=port)


def measure(kind: str, trials: int, workers: int, batch: int = 1) -> dict[str, Any] | str:
    """Trials/s of ``workers`` processes on one fresh study (``trials`` per fold in all),
    each writing ``batch`` finished trials at a time."""
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
                    str(batch),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=ONE_THREAD,
            )
            for i in range(workers)
        ]
        startup = [json.loads(_last_line(p))["ready"] for p in procs]
        for p in procs:  # every worker is ready: all start their trials now
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        runs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    finally:
        if server is not None:
            server.terminate()
    each = [r["trials"] / (r["end"] - r["start"]) for r in runs]
    span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    total = sum(r["trials"] for r in runs) / span
    cpu = sum(r["cpu"] for r in runs) / sum(r["trials"] for r in runs)  # CPU seconds a trial
    return {"workers": workers, "each": each, "total": total, "startup": max(startup), "cpu": cpu}


def _last_line(proc: subprocess.Popen[str]) -> str:
    """The worker's ``ready`` line (its stdout up to it)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"worker {proc.pid} ended before it was ready (rc {proc.wait()})")
    return line


def compare(kind: str, trials: int, batch: int = 1) -> str:
    """One table row: ``kind``'s trials/s with one worker, then two (each, together), the
    speed-up, and the CPU a trial costs a worker among two over alone (1.00: sharing the study
    adds no work, so only free cores limit the speed-up)."""
    alone = measure(kind, trials, 1, batch)
    if isinstance(alone, str):
        return f"{kind:14} {alone}"
    pair = measure(kind, trials, 2, batch)
    assert not isinstance(pair, str)
    each = " + ".join(f"{x:.0f}" for x in pair["each"])
    return (f"{kind:14} {batch:>5} {alone['total']:>8.0f}/s {each:>16} /s "
            f"{pair['total']:>8.0f}/s {pair['total'] / alone['total']:>8.2f}× "
            f"{pair['cpu'] / alone['cpu']:>8.2f}")  # fmt: skip


HEADER = (
    f"{'storage':14} {'batch':>5} {'1 worker':>10} {'2 workers (each)':>20} {'together':>10} "
    f"{'speed-up':>9} {'CPU/trial':>9}"
)


def _burn(_: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(8_000_000):
        x += i * i % 7
    return time.perf_counter() - t0


def burn() -> str:
    """The reference row: a pure-Python CPU burn, 1 process vs 2 at once, now (what the
    machine's free cores allow under the current load)."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        alone = pool.map(_burn, [0])[0]
    with ctx.Pool(2) as pool:
        t0 = time.perf_counter()
        pool.map(_burn, [0, 1], chunksize=1)
        pair = time.perf_counter() - t0
    return f"{'cpu burn (ref)':14} {'':>5} {'':>10} {'':>20} {'':>10} {2 * alone / pair:>8.2f}×"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f}/{five:.2f} on {os.cpu_count()} cores"


def prime() -> None:
    """Fill numba's on-disk cache so no measured process pays a compile another did not."""
    measure("journal-file", 4, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=240, help="trials per fold, all workers")
    ap.add_argument("--storage", action="append", choices=STORAGES, help="only these")
    ap.add_argument(
        "--batch", type=int, action="append",
        help="finished trials each worker writes at a time (repeatable; default 1 and 10)",
    )  # fmt: skip
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, where, group, trials, seed, batch = args.worker
        worker(kind, where, group, int(trials), int(seed), int(batch))
        return 0
    sys.path.insert(0, str(ROOT))
    print(f"sma_cross, TPE (one trial per ask), {FOLDS} folds, {BARS} bars, {args.trials} trials "
          f"per fold; {load()}")  # fmt: skip
    print(HEADER)
    prime()
    print(burn(), flush=True)
    for kind in args.storage or STORAGES:
        for batch in args.batch or (1, 10):
            print(compare(kind, args.trials, batch), flush=True)
    print(burn(), flush=True)
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
