"""Bad input and a broken environment, verb by verb, in a real subprocess: one ``error:`` line,
exit 2 (input) or 1 (environment), no traceback, and no file written anywhere in the sandbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.history.layout import HistoryLayout, Series

pytestmark = pytest.mark.slow

UNWRITABLE = "/sys/tp-nowhere"  # refused even to root (EPERM)
STRATEGY = """
from typing import ClassVar

import polars as pl

from trading_pipeline.strategies.base import Param, Params, SearchSpace, Signals, StrategyFamily


class Broken(StrategyFamily):
    name: ClassVar[str] = "broken_one"
    space: ClassVar[SearchSpace] = SearchSpace(params=(Param("n", "int", 5, 2, 10, 1),))

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        BODY
"""


class World(NamedTuple):
    root: Path
    data: Path
    cwd: Path
    busy_port: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A sandbox: a candle file, broken strategy files, a store with January 2024 only, a file
    where a folder belongs, a garbage ledger's bots dir, a corrupt manifest, a busy port."""
    root = tmp_path_factory.mktemp("clean")
    data, cwd = root / "data", root / "cwd"
    cwd.mkdir()
    random_walk_bars(600, seed=3).write_parquet(root / "bars.parquet")
    (root / "raises.py").write_text(STRATEGY.replace("BODY", "raise RuntimeError('kaboom')"))
    (root / "none.py").write_text(STRATEGY.replace("BODY", "return None"))
    (root / "afile").write_text("not a folder\n")
    history = HistoryLayout(data / "history")
    for symbol in ("BTCUSDT", "ETHUSDT", "BNBUSDT"):
        path = history.parquet_path(Series("spot", symbol, "1h"), 2024, 1)
        path.parent.mkdir(parents=True)
        random_walk_bars(31 * 24, start=datetime(2024, 1, 1, tzinfo=UTC)).write_parquet(path)
    garbage = root / "garbage-bots" / "bot1" / "paper" / "ledger.sqlite"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"this is not a SQLite database\n" * 100)
    corrupt = root / "corrupt" / "history" / "manifest.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text('{"files": [unfinished')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield World(root, data, cwd, busy.getsockname()[1])


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if not p.is_dir()
    } | {str(p.relative_to(root)) + "/": (0, 0) for p in root.rglob("*") if p.is_dir()}


def run(
    world: World, argv: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TP_")}
    clean.pop("MLFLOW_TRACKING_URI", None)
    clean.update(TP_DATA_DIR=str(world.data), MLFLOW_DISABLE_TELEMETRY="true", **(env or {}))
    args = [
        a.replace("{root}", str(world.root)).replace("{busy}", str(world.busy_port)) for a in argv
    ]
    return subprocess.run(
        [sys.executable, "-m", "trading_pipeline", *args],
        cwd=world.cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


DATA = ["--data", "{root}/bars.parquet"]
SWEEP = ["sweep", "--strategy", "sma_cross", *DATA]
TUNE = ["tune", "--strategy", "sma_cross", *DATA, "--trials", "2", "--folds", "2"]
WORKER = ["tune-worker", "--study", "nope", *DATA, "--trials", "2"]
FETCH = ["fetch", "--symbol", "BTCUSDT", "--from", "2024-01-01", "--to", "2024-01-02"]
NOWHERE = ["--base-url", "http://127.0.0.1:9", "--listing-url", "http://127.0.0.1:9"]
REPLAY = ["paper", "replay", "--from", "2024-01-10", "--to", "2024-01-12"]
BOT = ["bot", "run", "--bot", "bot1", "--replay-from", "2024-01-10", "--replay-to", "2024-01-12"]
BROKEN = ["--strategy", "broken_one", *DATA]
UNREACHABLE = (
    "postgresql://nobody@127.0.0.1:1/x",
    "sqlite:////nonexistent/dir/x.db",
    "redis://127.0.0.1:1/0",  # Optuna's journal on Redis: no server there
)

# (id, argv, extra env, exit code, a fragment of the error line)
CASES: list[tuple[str, list[str], dict[str, str], int, str]] = [
    ("concurrency-env", [*FETCH, *NOWHERE], {"TP_CONCURRENCY": "abc"}, 2, "TP_CONCURRENCY"),
    ("base-url-not-url", [*FETCH, "--base-url", "notaurl"], {}, 2, "--base-url"),
    ("base-url-ftp", [*FETCH, "--base-url", "ftp://x"], {}, 2, "--base-url"),
    ("listing-url-bad-port", [*FETCH, "--listing-url", "http://h:99999"], {}, 2, "--listing"),
    ("fetch-empty-symbol", ["fetch", "--symbol", "", *NOWHERE], {}, 2, "--symbol"),
    ("fetch-empty-universe-env", ["fetch", *NOWHERE], {"TP_UNIVERSE": " , "}, 2, "TP_UNIVERSE"),
    (
        "fetch-from-year-1",
        [*FETCH[:2], "BTCUSDT", "--from", "0001-01-01", *NOWHERE],
        {},
        2,
        "--from",
    ),
    (
        "fetch-from-after-to",
        ["fetch", "--from", "2024-02-01", "--to", "2024-01-01"],
        {},
        2,
        "after",
    ),
    (
        "fetch-data-dir-file",
        [*FETCH, *NOWHERE, "--data-dir", "{root}/afile"],
        {},
        2,
        "not a folder",
    ),
    ("fetch-data-dir-unwritable", [*FETCH, *NOWHERE, "--data-dir", UNWRITABLE], {}, 1, UNWRITABLE),
    (
        "fetch-corrupt-manifest",
        [*FETCH, *NOWHERE, "--data-dir", "{root}/corrupt"],
        {},
        1,
        "manifest",
    ),
    ("grid-inf", [*SWEEP, "--grid", "fast=5:inf"], {}, 2, "finite"),
    ("grid-nan", [*SWEEP, "--grid", "fast=5:nan"], {}, 2, "finite"),
    ("grid-fractional-int-step", [*SWEEP, "--grid", "fast=5:6:0.001"], {}, 2, "whole numbers"),
    ("grid-unbounded-axis", [*SWEEP, "--grid", "fast=1:1e12"], {}, 2, "limit is 1,000,000"),
    (
        "grid-unbounded-product",
        [*SWEEP, "--grid", "fast=1:2000", "--grid", "slow=2:2001"],
        {},
        2,
        "limit is 1,000,000",
    ),
    (
        "backtest-signals-raise",
        ["backtest", *BROKEN, "--strategy-file", "{root}/raises.py"],
        {},
        2,
        "broken_one",
    ),
    (
        "backtest-signals-none",
        ["backtest", *BROKEN, "--strategy-file", "{root}/none.py"],
        {},
        2,
        "broken_one",
    ),
    (
        "sweep-signals-raise",
        ["sweep", *BROKEN, "--strategy-file", "{root}/raises.py", "--grid", "n=2:4"],
        {},
        2,
        "broken_one",
    ),
    (
        "sweep-signals-none",
        ["sweep", *BROKEN, "--strategy-file", "{root}/none.py", "--grid", "n=2:4"],
        {},
        2,
        "broken_one",
    ),
    (
        "tune-signals-raise",
        ["tune", *BROKEN, "--strategy-file", "{root}/raises.py", "--trials", "2", "--folds", "2"],
        {},
        2,
        "broken_one",
    ),
    (
        "tune-signals-none",
        ["tune", *BROKEN, "--strategy-file", "{root}/none.py", "--trials", "2", "--folds", "2"],
        {},
        2,
        "broken_one",
    ),
    ("tune-embargo-negative", [*TUNE, "--embargo", "-5"], {}, 2, "--embargo"),
    ("tune-one-fold", [*TUNE[:-1], "1"], {}, 2, "--folds"),
    ("tune-no-trials", [*TUNE[:-4], "--trials", "-1", "--folds", "2"], {}, 2, "--trials"),
    ("tune-fee-nan", [*TUNE, "--fee", "nan"], {}, 2, "--fee"),
    ("tune-storage-bogus", [*TUNE, "--storage", "bogus://x"], {}, 2, "storage"),
    *[
        (f"tune-storage-{url.split(':')[0]}", [*TUNE, "--storage", url], {}, 1, "storage")
        for url in UNREACHABLE
    ],
    ("worker-storage-postgresql", [*WORKER, "--storage", UNREACHABLE[0]], {}, 1, "storage"),
    # a storage file that does not exist holds no study: input, and it is not created
    ("worker-storage-sqlite", [*WORKER, "--storage", UNREACHABLE[1]], {}, 2, "no study storage"),
    ("worker-no-journal", [*WORKER, "--storage", "journal:{root}/cwd/j.log"], {}, 2, "no study"),
    (
        "worker-no-trials",
        [*WORKER, "--storage", "journal:{root}/j.log", "--trials", "0"],
        {},
        2,
        "--trials",
    ),
    ("tune-tracking-uri-bogus", [*TUNE, "--tracking-uri", "bogus://x"], {}, 2, "tracking"),
    (
        "backtest-size-inf",
        ["backtest", "--strategy", "sma_cross", *DATA, "--size", "inf"],
        {},
        2,
        "--size",
    ),
    (
        "backtest-cash-negative",
        ["backtest", "--strategy", "sma_cross", *DATA, "--cash", "-1"],
        {},
        2,
        "--cash",
    ),
    (
        "lookahead-points-zero",
        ["lookahead", "--strategy", "sma_cross", *DATA, "--points", "0"],
        {},
        2,
        "--points",
    ),
    ("replay-capital-inf", [*REPLAY, "--capital", "inf"], {}, 2, "--capital"),
    ("replay-capital-nan", [*REPLAY, "--capital", "nan"], {}, 2, "--capital"),
    ("replay-capital-negative", [*REPLAY, "--capital", "-5"], {}, 2, "--capital"),
    ("bot-capital-inf", [*BOT, "--capital", "inf"], {}, 2, "--capital"),
    ("bot-capital-nan", [*BOT, "--capital", "nan"], {}, 2, "--capital"),
    ("replay-out-unwritable", [*REPLAY, "--out", UNWRITABLE], {}, 1, UNWRITABLE),
    ("replay-out-a-file", [*REPLAY, "--out", "{root}/afile"], {}, 2, "not a folder"),
    ("replay-out-under-a-file", [*REPLAY, "--out", "{root}/afile/report"], {}, 1, "not writable"),
    (
        "replay-from-year-1",
        ["paper", "replay", "--from", "0001-01-01", "--to", "2024-01-12"],
        {},
        2,
        "--from",
    ),
    (
        "replay-to-year-9999",
        ["paper", "replay", "--from", "2024-01-01", "--to", "9999-12-31"],
        {},
        2,
        "--to",
    ),
    (
        "replay-from-after-to",
        ["paper", "replay", "--from", "2024-01-12", "--to", "2024-01-10"],
        {},
        2,
        "after",
    ),
    (
        "replay-no-data",
        ["paper", "replay", "--from", "2022-05-01", "--to", "2022-05-03"],
        {},
        2,
        "2022-05",
    ),
    (
        "bot-replay-no-data",
        [*BOT[:4], "--replay-from", "2022-05-01", "--replay-to", "2022-05-03"],
        {},
        2,
        "2022-05",
    ),
    (
        "backtest-from-year-1",
        ["backtest", "--strategy", "sma_cross", *DATA, "--from", "0001-01-01"],
        {},
        2,
        "--from",
    ),
    (
        "fleet-status-garbage-ledger",
        ["fleet", "status", "--bots-dir", "{root}/garbage-bots"],
        {},
        1,
        "ledger",
    ),
    (
        "fleet-status-bots-dir-file",
        ["fleet", "status", "--bots-dir", "{root}/afile"],
        {},
        2,
        "not a folder",
    ),
    (
        "fleet-halt-bots-dir-file",
        ["fleet", "halt", "--reason", "x", "--bots-dir", "{root}/afile"],
        {},
        2,
        "not a folder",
    ),
    ("fleet-risk-limit-nan", ["fleet", "risk-check", "--limit", "nan"], {}, 2, "--limit"),
    ("mirror-port-range", ["mirror", "serve", "{root}", "--port", "99999"], {}, 2, "--port"),
    ("mirror-port-busy", ["mirror", "serve", "{root}", "--port", "{busy}"], {}, 1, "cannot listen"),
    ("mirror-bad-host", ["mirror", "serve", "{root}", "--host", "bad host"], {}, 2, "--host"),
    (
        "mirror-build-bad-month",
        ["mirror", "build", "{root}/m", "--from", "2021-13"],
        {},
        2,
        "--from",
    ),
    (
        "mirror-build-unwritable",
        ["mirror", "build", UNWRITABLE + "/m", "--from", "2024-01", "--to", "2024-01"],
        {},
        1,
        "not writable",
    ),
    ("select-at-year-9999", ["select", "--at", "9999-12-31T23:59"], {}, 2, "--at"),
    (
        "selector-train-tracking-uri-bogus",
        ["selector", "train", "--tracking-uri", "bogus://x"],
        {},
        2,
        "tracking",
    ),
    ("mlflow-ui-port-range", ["mlflow-ui", "--port", "70000"], {}, 2, "--port"),
]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    ("argv", "env", "code", "fragment"),
    [pytest.param(argv, env, code, fragment, id=name) for name, argv, env, code, fragment in CASES],
)
def test_one_error_line_exit_code_and_nothing_written(
    world: World, argv: list[str], env: dict[str, str], code: int, fragment: str
) -> None:
    before = snapshot(world.root)
    proc = run(world, argv, env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert fragment in lines[0], lines[0]
    assert proc.returncode == code, lines[0]
    assert snapshot(world.root) == before
    assert not Path(UNWRITABLE).exists()


def test_import_freqtrade_help_is_help(world: World) -> None:
    proc = run(world, ["import", "freqtrade", "--help"])
    assert proc.returncode == 0 and "Usage" in proc.stdout and not proc.stderr.strip()


def test_halt_reason_with_markup_is_shown_verbatim(world: World) -> None:
    bots = world.root / "markup-bots"
    assert (
        run(
            world, ["fleet", "halt", "--reason", "oops [/x] [bold]", "--bots-dir", str(bots)]
        ).returncode
        == 0
    )
    proc = run(world, ["fleet", "status", "--bots-dir", str(bots)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "oops [/x] [bold]" in proc.stdout and "Traceback" not in proc.stderr
