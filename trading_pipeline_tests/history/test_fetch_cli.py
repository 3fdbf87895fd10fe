"""``trading-pipeline fetch``: flags, exit codes 0/1/2, summary, and nothing written on bad input."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from trading_pipeline.cli import main
from trading_pipeline.history.layout import Series
from trading_pipeline.history.vision import monthly_key
from trading_pipeline_tests.fakes.faults import FaultyMirror
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_days, month_range

from .conftest import SPOT_1H

pytestmark = pytest.mark.slow  # a local HTTP server (the Vision mirror)


@pytest.fixture
def published(tree: Path) -> Path:
    make_vision_tree(tree, SPOT_1H, months=month_range((2024, 1), 2))
    make_vision_tree(tree, Series("spot", "ETHUSDT", "1h"), months=month_range((2024, 1), 2))
    make_vision_tree(tree, SPOT_1H, days=month_days(2024, 3, until=date(2024, 3, 3)))
    return tree


def _args(mirror: FaultyMirror, data_dir: Path, *extra: str) -> list[str]:
    return [
        "fetch", "--data-dir", str(data_dir), "--base-url", mirror.url,
        "--listing-url", mirror.url, *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--interval", "1M"], "1mo"),
        (["--from", "2024-02-01", "--to", "2024-01-01"], "after"),
        (["--market", "um", "--interval", "1s"], "spot only"),
        (["--interval", "1w", "--fill_daily"], "no daily files"),
        (["--symbol", "DOGEUSDT"], "unknown symbol DOGEUSDT on spot"),
        (["--market", "options"], "unknown market"),
        (["--from", "yesterday"], "--from must be a date"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    published: Path,
    mirror: FaultyMirror,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    data_dir = tmp_path / "data"
    base = ["--symbol", "BTCUSDT", "--from", "2024-01-01", "--to", "2024-02-28"]
    code = main(_args(mirror, data_dir, *base, *flags))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and message in err
    assert not data_dir.exists()
    assert mirror.faults.count("*.zip") == 0


def test_fetch_summary_and_plain_log_lines(
    published: Path, mirror: FaultyMirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    flags = ["--symbol", "btcusdt,ETHUSDT", "--from", "2024-01-01", "--to", "2024-03-02"]
    code = main(_args(mirror, data_dir, *flags, "--fill-daily"))
    out, err = capsys.readouterr()
    assert code == 0
    assert "files: 6 new, 0 skipped, 0 failed" in out  # 2x2 monthly + Mar 1-2 (Mar 3 > --to)
    assert f"rows: {2 * (744 + 696) + 48}; gaps: 0" in out
    assert "download 1/6" in err and "\x1b[" not in err  # not a TTY: plain lines
    assert (data_dir / "history" / "manifest.json").exists()
    assert main(_args(mirror, data_dir, *flags, "--fill_daily")) == 0
    assert "files: 0 new, 6 skipped" in capsys.readouterr().out


def test_repeated_symbol_flag_and_defaults_from_settings(
    published: Path,
    mirror: FaultyMirror,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TP_VISION_URL", mirror.url)
    monkeypatch.setenv("TP_VISION_LISTING_URL", mirror.url)
    monkeypatch.setenv("TP_HISTORY_DIR", str(tmp_path / "hist"))
    monkeypatch.setenv("TP_UNIVERSE", "ETHUSDT")
    monkeypatch.setenv("TP_START", "2024-02-01")
    assert main(["fetch", "--to", "2024-02-29"]) == 0  # ETHUSDT 1h Feb from the settings
    assert "files: 1 new" in capsys.readouterr().out
    eth = tmp_path / "hist/parquet/market=spot/symbol=ETHUSDT/interval=1h/year=2024/month=02"
    assert (eth / "data.parquet").exists()
    code = main(["fetch", "--symbol", "BTCUSDT", "--symbol", "ETHUSDT", "--to", "2024-02-29"])
    assert code == 0 and "files: 1 new, 1 skipped" in capsys.readouterr().out


def test_failed_file_is_named_and_exit_1(
    published: Path, mirror: FaultyMirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = monthly_key(SPOT_1H, 2024, 2)
    mirror.faults.add("wrong_checksum", victim + ".CHECKSUM")
    code = main(
        _args(
            mirror,
            tmp_path / "d",
            "--symbol",
            "BTCUSDT",
            "--from",
            "2024-01-01",
            "--to",
            "2024-02-29",
        )
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "1 new, 0 skipped, 1 failed" in out
    assert f"failed: {victim}: " in out and "does not match its .CHECKSUM" in out


def test_python_dash_m_entry_point(published: Path, mirror: FaultyMirror, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trading_pipeline", "fetch", "--symbol", "BTCUSDT",
         "--from", "2024-01-01", "--to", "2024-01-31", "--data-dir", str(tmp_path / "d"),
         "--base-url", mirror.url, "--listing-url", mirror.url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "files: 1 new" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "trading_pipeline", "fetch", "--interval", "1M"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "1mo" in bad.stderr
    assert not (tmp_path / "data").exists()
