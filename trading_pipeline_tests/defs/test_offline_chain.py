"""The README's offline sequence, run exactly as written (as subprocesses), small by environment:
``mirror build`` → ``mirror serve`` (backgrounded) → ``make main`` against it; then the same
chain with one symbol's months removed from the mirror, and one stopped by SIGTERM."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trading_pipeline.defs.history.partitions import previous_month
from trading_pipeline_tests.servers import free_port

pytestmark = pytest.mark.slow  # subprocesses, a server, Dagster runs, MLflow

REPO = Path(__file__).resolve().parents[2]
README_PORT = "8765"
MAIN_MODULE = "trading_pipeline.defs.main_job"


def readme_block() -> list[str]:
    """The commands of the README's block that holds ``mirror build``."""
    text = (REPO / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        if "mirror build" in block:
            return [line.strip() for line in block.splitlines() if line.strip()]
    raise AssertionError("no README block with `mirror build`")


def make_main_command() -> list[str]:
    """What ``make main`` runs, read from the Makefile's recipe (without the setup step)."""
    recipe = re.search(r"^main:.*\n\t(.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert recipe and f"-m {MAIN_MODULE}" in recipe.group(1)
    return [sys.executable, "-m", MAIN_MODULE]


def to_argv(line: str, port: int) -> tuple[dict[str, str], list[str], bool]:
    """(inline environment, argv, backgrounded) of one README line, the README's port swapped."""
    words = shlex.split(line.replace(README_PORT, str(port)))
    background = words[-1] == "&"
    words = words[:-1] if background else words
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if words[:2] == ["make", "main"]:
        return env, make_main_command() + words[2:], background
    assert words[0] == "trading-pipeline", line
    return env, [sys.executable, "-m", "trading_pipeline", *words[1:]], background


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    start = previous_month(previous_month(datetime.now(UTC).date()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TP_")}
    env.update(
        DAGSTER_HOME=str(home),
        TP_DATA_DIR=str(tmp_path / "data"),
        TP_START=start.isoformat(),  # small: the last three months of the mirror
        TP_MAIN_FAMILIES="sma_cross",
        TP_MAIN_TRIALS="2",
        TP_MAIN_FOLDS="2",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def readme_run(tmp_path: Path, base_env: dict[str, str]) -> Iterator[tuple[int, list[str], int]]:
    """Runs the README block's commands in ``tmp_path`` (step N's output in ``stepN.out``);
    yields (the port served, the exit codes of the foreground commands, servers backgrounded)
    and stops the backgrounded server afterwards."""
    port = free_port()
    background: list[subprocess.Popen[bytes]] = []
    results: list[int] = []
    try:
        for line in readme_block():
            extra, argv, bg = to_argv(line, port)
            env = {**base_env, **extra}
            if bg:
                background.append(
                    subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
                )
                _wait_port(port)
                continue
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
            (tmp_path / f"step{len(results)}.out").write_text(done.stdout + done.stderr)
            results.append(done.returncode)
        yield port, [str(r) for r in results], len(background)
    finally:
        for proc in background:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def _wait_port(port: int) -> None:
    import socket

    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def _main(tmp_path: Path, env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    url = f"http://127.0.0.1:{port}"
    env = {**env, "TP_VISION_URL": url, "TP_VISION_LISTING_URL": url}
    return subprocess.run(
        make_main_command(), cwd=tmp_path, env=env, capture_output=True, text=True
    )


def test_the_readme_sequence_runs_the_chain_and_a_missing_symbol_fails_it(
    tmp_path: Path, base_env: dict[str, str], readme_run: tuple[int, list[str], int]
) -> None:
    port, codes, servers = readme_run
    out = (tmp_path / "step1.out").read_text()
    assert servers == 1 and codes == ["0", "0"], out
    for section in ("summary", "studies", "selector", "bot assignments", "paper replay"):
        assert re.search(rf"^{section}", out, re.MULTILINE), (section, out)
    for symbol in ("BTCUSDT", "ETHUSDT", "BNBUSDT"):  # a row per series with its months
        assert re.search(rf"spot-{symbol}-1h\s+3\s+\d{{4}}-\d\d", out), out
    assert re.search(r"sma_cross\s+spot-BTCUSDT-1h\s+[+-]\d", out), out  # an OOS result
    assert re.search(r"^\s+bot1\s+\S+", out, re.MULTILINE), out
    assert re.search(r"PnL [+-]\d", out), out
    assert "DEBUG" not in out and "Traceback" not in out
    assert (tmp_path / "mirror" / "data" / "spot" / "monthly" / "klines" / "BNBUSDT").is_dir()

    # one symbol's files removed from the mirror: named, exit 1, before any discovery
    shutil.rmtree(tmp_path / "mirror" / "data" / "spot" / "monthly" / "klines" / "BNBUSDT")
    shutil.rmtree(tmp_path / "mirror" / "data" / "spot" / "daily" / "klines" / "BNBUSDT")
    env = {**base_env, "TP_DATA_DIR": str(tmp_path / "data2")}
    done = _main(tmp_path, env, port)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "spot-BNBUSDT-1h" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "discovery" not in done.stdout


def test_unreachable_vision_is_one_line_naming_the_settings(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    done = _main(tmp_path, base_env, free_port())  # nothing listens there
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "unreachable" in lines[0] and "TP_VISION_URL" in lines[0]
    assert "TP_VISION_LISTING_URL" in lines[0]


def test_sigterm_stops_the_main_job_after_its_first_series(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    mirror = tmp_path / "mirror"
    start = base_env["TP_START"][:7]
    build = subprocess.run(
        [sys.executable, "-m", "trading_pipeline", "mirror", "build", str(mirror), "--from", start],
        env=base_env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    from trading_pipeline.history.mirror import running_mirror

    with running_mirror(mirror) as server:
        env = {**base_env, "TP_VISION_URL": server.url, "TP_VISION_LISTING_URL": server.url}
        proc = subprocess.Popen(
            make_main_command(), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("  history "):  # the first series' progress line
                break
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"still running 30 s after SIGTERM: {''.join(seen)}") from None
        waited = time.monotonic() - sent
        err = proc.stderr.read() if proc.stderr else ""
    assert code == 128 + signal.SIGTERM, (code, err)
    assert "stopped by SIGTERM" in err and "Traceback" not in err, err
    assert waited < 30
    data = tmp_path / "data"
    assert not list(data.rglob(".*.part")), "an atomic write's temporary was left behind"
    for z in (data / "history" / "raw").rglob("*.zip"):  # every zip under its name is whole
        digest = (z.with_name(z.name + ".CHECKSUM")).read_text().split()[0]
        assert hashlib.sha256(z.read_bytes()).hexdigest() == digest, z
