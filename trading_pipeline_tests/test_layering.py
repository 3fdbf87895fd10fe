"""The core never imports Dagster: checked by ruff's banned-api rule and by importing it here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_bans_dagster_outside_defs(tmp_path: Path) -> None:
    offender = ROOT / "trading_pipeline" / "market" / "_tmp_offender.py"
    offender.write_text("import dagster\n")
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--no-cache",
                "--select",
                "TID251",
                str(offender),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    finally:
        offender.unlink()
    assert out.returncode == 1
    assert "TID251" in out.stdout and "dagster" in out.stdout


def test_core_packages_import_without_dagster() -> None:
    code = (
        "import sys, importlib, pkgutil, trading_pipeline\n"
        "for m in pkgutil.walk_packages(trading_pipeline.__path__, 'trading_pipeline.'):\n"
        "    if m.name.startswith(('trading_pipeline.defs', 'trading_pipeline.definitions')): continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k == 'dagster' or k.startswith('dagster.'))\n"
        "print(len(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "0"
