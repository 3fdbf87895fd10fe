"""The image's entrypoint run the way its container runs it, without Docker: the project
installed non-editable into a root-owned venv (as the Dockerfile's `uv sync --no-editable`),
then `python -m trading_pipeline.container ROLE …` as uid 10001, which cannot write that venv.
numba must cache somewhere writable (the crash this guards against: "cannot cache function …
no locator available"), the CLI must work, and the code-location server must start and stop."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trading_pipeline.container import command
from trading_pipeline_tests.fakes.bars import make_bars

pytestmark = pytest.mark.slow  # builds a venv, runs subprocesses

ROOT = Path(__file__).resolve().parents[1]
UID = 10001
BASE_PYTHON = Path("/usr/bin/python3.11")  # the image's interpreter is world-readable too


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed")
    return found


def _open_dir(prefix: str) -> Path:
    """A folder under /tmp that uid 10001 can reach (pytest's own tmp tree is root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def image_venv() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or not BASE_PYTHON.exists():
        pytest.skip("needs root, setpriv and /usr/bin/python3.11 to act as the image's user")
    root = _open_dir("tp-image-")
    venv = root / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [_uv(), "sync", "--frozen", "--no-editable", "--no-dev", "--python", str(BASE_PYTHON),
         "--reinstall-package", "trading-pipeline"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    yield venv
    shutil.rmtree(root, ignore_errors=True)


def _as_image_user(venv: Path, home: Path, *args: str, **kw: object) -> subprocess.Popen[str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "TP_DATA_DIR": str(home / "data"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "TMPDIR": str(home / "tmp"),
        "DO_NOT_TRACK": "1",
        **kw.pop("env", {}),  # type: ignore[dict-item]
    }
    cmd = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups",
           str(venv / "bin" / "python"), "-m", "trading_pipeline.container", *args]  # fmt: skip
    return subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]  # fmt: skip


@pytest.fixture
def user_home() -> Iterator[Path]:
    home = _open_dir("tp-image-home-")
    for sub in ("data", "dagster_home", "tmp"):
        (home / sub).mkdir(parents=True)
    (home / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for path in [home, *home.rglob("*")]:
        os.chown(path, UID, UID)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def _site_files(venv: Path) -> set[Path]:
    return {p for p in (venv / "lib").rglob("*") if "__pycache__" not in p.parts or p.is_file()}


def test_the_cli_role_runs_a_backtest_as_uid_10001_over_a_read_only_venv(
    image_venv: Path, user_home: Path
) -> None:
    data = user_home / "data" / "bars.parquet"
    make_bars(1500, seed=4).write_parquet(data)
    os.chown(data, UID, UID)
    before = _site_files(image_venv)
    proc = _as_image_user(
        image_venv, user_home, "cli", "backtest", "--strategy", "sma_cross",
        "--param", "fast=5", "--param", "slow=30", "--data", str(data), "--json",
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert '"strategy": "sma_cross"' in out
    assert "no locator available" not in err
    # numba cached its kernels in the temp dir the entrypoint chose, not in the venv
    assert any((user_home / "tmp").rglob("*.nbi")), "numba wrote no cache index"
    assert _site_files(image_venv) == before


def test_roles_map_to_their_programs_and_bind_loopback_by_default() -> None:
    assert command("fetch", ["--symbol", "BTCUSDT"], {})[:3] == [
        "trading-pipeline",
        "fetch",
        "--symbol",
    ]
    code = command("code-location", [], {})
    assert code[:3] == ["dagster", "code-server", "start"] and code[code.index("-h") + 1] == (
        "127.0.0.1"
    )
    web = command("webserver", [], {"TP_BIND_HOST": "0.0.0.0"})
    assert web[0] == "dagster-webserver" and web[web.index("-h") + 1] == "0.0.0.0"
    with pytest.raises(ValueError, match="unknown role 'dagit'"):
        command("dagit", [], {})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_code_location_role_serves_and_stops_on_sigterm(
    image_venv: Path, user_home: Path
) -> None:
    port = _free_port()
    proc = _as_image_user(
        image_venv, user_home, "code-location", env={"TP_CODE_LOCATION_PORT": str(port)}
    )
    try:
        deadline = time.monotonic() + 240
        serving = False
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    serving = True
                    break
            time.sleep(0.5)
        assert serving, proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
        health = subprocess.run(
            [str(image_venv / "bin" / "dagster"), "api", "grpc-health-check", "-p", str(port)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "DAGSTER_HOME": str(user_home / "dagster_home")},
        )  # fmt: skip
        assert health.returncode == 0, health.stdout + health.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode is not None
