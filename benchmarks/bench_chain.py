"""The whole chain end to end (what ``make main`` runs) on a generated mirror served locally.

Builds a Binance-Vision-shaped mirror of 5 years × BTCUSDT, ETHUSDT, BNBUSDT × 1h
(``trading-pipeline mirror build``), serves it on 127.0.0.1 (``mirror serve``'s server), and
runs the main job as a subprocess into a fresh ``DAGSTER_HOME`` and data dir, with the default
discovery budget unless ``TP_MAIN_*`` say otherwise. Prints the time of each stage (from the
job's own ``stages:`` line), the wall time, and the anchor measured in the same run: a bare
interpreter loading the code location (``definitions.defs()``), the fixed cost every Dagster
command pays. Target: the whole under 5 minutes on this 2-core machine.

Run: ``make bench-chain`` (or ``.venv/bin/python benchmarks/bench_chain.py [YEARS]``).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from trading_pipeline.history.mirror import running_mirror
from trading_pipeline.history.mirror_build import build_mirror, make_plan

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
TARGET_S = 300.0


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _anchor() -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from trading_pipeline.definitions import defs; defs()"],
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - t0


def main(years: int = 5) -> int:
    now = datetime.now(UTC)
    first = f"{now.year - years:04d}-{now.month:02d}"
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores, shared)")
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        plan = make_plan(SYMBOLS, interval="1h", start=first, end=None)
        counts = build_mirror(work / "mirror", plan)
        build_s = time.perf_counter() - t0
        print(f"mirror build: {sum(counts.values())} zips, {plan.first:%Y-%m} … {plan.last} "
              f"in {build_s:.1f} s")  # fmt: skip
        home = work / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        with running_mirror(work / "mirror") as server:
            env = {
                **os.environ,
                "DAGSTER_HOME": str(home),
                "TP_DATA_DIR": str(work / "data"),
                "TP_VISION_URL": server.url,
                "TP_VISION_LISTING_URL": server.url,
                "TP_START": f"{plan.first:%Y-%m-%d}",
                "TP_UNIVERSE": ",".join(SYMBOLS),
            }
            t0, before = time.perf_counter(), _child_cpu()
            done = subprocess.run(
                [sys.executable, "-m", "trading_pipeline.defs.main_job"],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
            )
            wall, cpu_s = time.perf_counter() - t0, _child_cpu() - before
        print(done.stdout)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            print(f"main job exited {done.returncode}", file=sys.stderr)
            return 1
        anchor = _anchor()
    stages = re.search(
        r"^stages: (.*); total ([\d.]+) s \(cpu ([\d.]+)\)$", done.stdout, re.MULTILINE
    )
    print(f"{'stage':<10} {'wall s':>8} {'cpu s':>8}")
    if stages:
        for name, seconds, cpu in re.findall(r"(\w+) ([\d.]+) s \(cpu ([\d.]+)\)", stages.group(1)):
            print(f"{name:<10} {float(seconds):8.1f} {float(cpu):8.1f}")
        print(f"{'stages':<10} {float(stages.group(2)):8.1f} {float(stages.group(3)):8.1f}")
    print(f"{'process':<10} {wall:8.1f} {cpu_s:8.1f}  (start to exit, incl. loading the location)")
    print(f"anchor: loading the code location {anchor:.1f} s; the chain is {wall / anchor:.1f}× it")
    verdict = "within" if wall <= TARGET_S else "OVER"
    print(f"target {TARGET_S:.0f} s wall: {verdict} ({wall:.0f} s wall, {cpu_s:.0f} s CPU, load "
          f"{os.getloadavg()[0]:.1f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
