"""Loading user strategy files: no built-in shadowed, no exit or outside input at import."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.registry import load_strategy_file

FAMILY = """
from typing import ClassVar
from trading_pipeline.strategies.base import Param, SearchSpace, Signals, StrategyFamily

class Fam(StrategyFamily):
    name: ClassVar[str] = "{name}"
    space: ClassVar[SearchSpace] = SearchSpace(params=(Param("w", "int", 3, low=2, high=9),))

    def signals(self, bars, params):
        return Signals.from_positions(bars["close"].to_numpy() * 0)
"""


def write(tmp_path: Path, body: str, name: str = "user_fam") -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(body + FAMILY.format(name=name))
    return path


def test_a_user_file_loads(tmp_path: Path) -> None:
    assert list(load_strategy_file(write(tmp_path, "import numpy\n"))) == ["user_fam"]


def test_a_user_family_may_not_shadow_a_built_in(tmp_path: Path) -> None:
    path = write(tmp_path, "", name="sma_cross")
    with pytest.raises(UserInputError, match="'sma_cross', the name of a built-in family"):
        load_strategy_file(path)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("import sys\nsys.exit(0)\n", r"stopped the import \(SystemExit"),
        ("raise KeyboardInterrupt\n", r"stopped the import \(KeyboardInterrupt"),
    ],
)
def test_exit_at_import_is_an_error(tmp_path: Path, body: str, match: str) -> None:
    modules = set(sys.modules)
    with pytest.raises(UserInputError, match=match):
        load_strategy_file(write(tmp_path, body))
    assert not {m for m in set(sys.modules) - modules if m.startswith("tp_user_strategy_")}


@pytest.mark.parametrize("swallow", [False, True])
def test_reading_data_at_import_is_refused(tmp_path: Path, swallow: bool) -> None:
    data = tmp_path / "daily.csv"
    data.write_text("day,close\n2020-01-01,1\n")
    read = f"DAILY = open({str(data)!r}).read()\n"
    body = f"try:\n    {read}except Exception:\n    DAILY = ''\n" if swallow else read
    with pytest.raises(UserInputError, match=r"reads outside input at import.*daily\.csv"):
        load_strategy_file(write(tmp_path, body))


def test_network_at_import_is_refused(tmp_path: Path) -> None:
    body = "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/daily', timeout=1)\n"
    with pytest.raises(UserInputError, match="outside input at import"):
        load_strategy_file(write(tmp_path, body))
