"""The fleet as a TOML file: the shipped default is the plan's fleet, a user's file works end to
end (``fleet show``, deploy validation), and every broken file is one ``error:`` line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trading_pipeline.bots.assignment import default_assignment, validate_assignment
from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.bots.fleet import candidates_from_decisions, ledger_paths
from trading_pipeline.bots.fleet_file import BotSpec, FleetFileError, load_fleet
from trading_pipeline.bots.limits import RiskLimits
from trading_pipeline.bots.spec import FLEET, current_fleet, default_split
from trading_pipeline.cli import main
from trading_pipeline.errors import UserInputError

SCALPING = (
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "DOGEUSDT",
    "LTCUSDT",
    "LINKUSDT",
    "AVAXUSDT",
)

# The fleet as bots/spec.py spelled it in code before it became a file (commit 2dff1ce), with
# bot3's top-5 momentum pick made explicit (issue 18).
TODAYS_FLEET = (
    BotSpec(
        name="bot1",
        role="core",
        symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"),
        interval="1h",
        families=("sma_cross",),
        capital_fraction=0.30,
        default_family="sma_cross",
        description="core trend follower: SMA crossover on the three majors",
    ),
    BotSpec(
        name="bot2",
        role="scalping",
        symbols=SCALPING,
        interval="5m",
        families=("rsi_reversion", "bollinger_reversion", "ema_cross"),
        capital_fraction=0.25,
        description="5-minute mean reversion and fast crosses on ten coins",
    ),
    BotSpec(
        name="bot3",
        role="momentum",
        symbols=SCALPING,
        interval="1h",
        families=("momentum", "donchian_breakout", "macd"),
        capital_fraction=0.25,
        description="momentum and breakout on the five coins with the strongest recent momentum",
        momentum_top=5,  # issue 18: the top five are recomputed at each decision
    ),
    BotSpec(
        name="bot4",
        role="arbitrage",
        symbols=("binanceus:BTCUSDT", "coinbase:BTCUSD"),
        interval="1h",
        families=("arbitrage",),
        capital_fraction=0.15,
        venues=("binanceus", "coinbase"),
        description="Binance US × Coinbase spread; holds cash until a spread survives costs",
    ),
    BotSpec(
        name="bot5",
        role="hedging",
        symbols=("BTCUSDT", "ETHUSDT"),
        interval="1h",
        families=("hedging",),
        capital_fraction=0.05,
        default_family="hedging",
        default_params={
            "dd_limit": 0.15,
            "dd_bars": 24 * 30,
            "use_bear": True,
            "use_highvol": False,
            "corr_max": 1.0,
            "cooldown": 24,
            "reduce_to": 0.0,
        },
        description="holds BTC and ETH, moves to the stable coin when drawdown or regime turns",
    ),
)

FOUR_BOTS = """
[fleet]
daily_loss = 0.08

[[bots]]
name = "trend"
role = "core"
symbols = ["BTCUSDT", "ETHUSDT"]
interval = "4h"
families = ["sma_cross", "macd"]
capital_fraction = 0.4
default_family = "sma_cross"
default_params = { fast = 10, slow = 50 }
risk = { daily_loss = 0.05, max_position_fraction = 0.5, max_drawdown = 0.2 }

[[bots]]
name = "scalp"
role = "scalping"
symbols = ["SOLUSDT"]
interval = "15m"
families = ["rsi_reversion"]
capital_fraction = 0.3

[[bots]]
name = "mom"
role = "momentum"
symbols = ["BNBUSDT", "XRPUSDT"]
interval = "1h"
families = ["momentum"]
capital_fraction = 0.2

[[bots]]
name = "hedge"
role = "hedging"
symbols = ["BTCUSDT", "ETHUSDT"]
interval = "1h"
families = ["hedging"]
capital_fraction = 0.1
default_family = "hedging"
"""


def test_the_shipped_file_is_todays_fleet_exactly() -> None:
    assert FLEET == TODAYS_FLEET
    assert all(b.risk == RiskLimits() for b in FLEET)  # the limits every bot had in code
    assert current_fleet().bots == TODAYS_FLEET  # no TP_FLEET_FILE: the shipped one
    assert default_split() == {"bot1": 0.30, "bot2": 0.25, "bot3": 0.25, "bot4": 0.15, "bot5": 0.05}
    assert current_fleet().daily_loss == 0.10


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_four_bot_user_fleet_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "my-fleet.toml"
    path.write_text(FOUR_BOTS)
    monkeypatch.setenv("TP_FLEET_FILE", str(path))

    code, out, err = _cli(capsys, "fleet", "show", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["source"] == str(path)
    assert [b["name"] for b in data["bots"]] == ["trend", "scalp", "mom", "hedge"]
    assert data["daily_loss"] == 0.08 and data["capital_total"] == pytest.approx(1.0)
    assert data["bots"][0]["risk"] == {
        "daily_loss": 0.05,
        "max_position_fraction": 0.5,
        "max_drawdown": 0.2,
    }
    code, table, _ = _cli(capsys, "fleet", "show")
    assert code == 0
    assert "my-fleet.toml" in table and "trend" in table and "4h" in table and "40.0%" in table

    # deploy validation runs against the user's fleet: its bots seed, bot1 is unknown
    store = DeploymentStore(tmp_path / "bots")
    report = store.deploy(candidates_from_decisions({}, {}))
    assert report.ok and {a.bot for a in report.deployed} == {"trend", "scalp", "mom", "hedge"}
    trend = store.current("trend")
    assert trend is not None and trend.family == "sma_cross" and trend.interval == "4h"
    assert trend.params["fast"] == 10 and trend.risk == RiskLimits(0.05, 0.5, 0.2)
    assert (tmp_path / "bots" / "trend" / "assignment.json").is_file()
    with pytest.raises(UserInputError, match="unknown bot 'bot1'"):
        validate_assignment(default_assignment(TODAYS_FLEET[0]), others={})
    too_big = trend.with_(capital_fraction=0.75)
    refused = store.deploy([too_big])
    assert [r.bot for r in refused.refused] == ["trend"] and "over 100%" in refused.refused[
        0
    ].reason
    off_spec = trend.with_(symbols=("SOLUSDT",))
    assert "not in the bot's spec" in store.deploy([off_spec]).refused[0].reason
    assert set(ledger_paths(tmp_path / "bots")) == set()  # only the fleet's names are looked at

    # the fleet daily-loss check takes the file's limit
    code, out, err = _cli(
        capsys, "fleet", "risk-check", "--json", "--bots-dir", str(store.bots_dir)
    )
    assert code == 0, err
    assert json.loads(out)["limit"] == 0.08


def test_a_changed_file_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(FOUR_BOTS)
    monkeypatch.setenv("TP_FLEET_FILE", str(path))
    assert current_fleet().names == ("trend", "scalp", "mom", "hedge")
    path.write_text(FOUR_BOTS.replace('name = "mom"', 'name = "momentum-bot"') + "\n")
    assert current_fleet().names == ("trend", "scalp", "momentum-bot", "hedge")
    monkeypatch.delenv("TP_FLEET_FILE")
    assert current_fleet().bots == TODAYS_FLEET


def _bot(**over: object) -> str:
    fields = {
        "name": '"b1"',
        "symbols": '["BTCUSDT"]',
        "interval": '"1h"',
        "families": '["sma_cross"]',
        "capital_fraction": "0.5",
    }
    fields.update({k: str(v) for k, v in over.items()})
    return "[[bots]]\n" + "\n".join(f"{k} = {v}" for k, v in fields.items() if v != "") + "\n"


BAD_FILES = {
    "unknown family": (
        _bot(families='["sma_crossover"]'),
        "unknown strategy family 'sma_crossover'",
    ),
    "fractions over 100%": (
        _bot(capital_fraction="0.6") + _bot(name='"b2"', capital_fraction="0.5"),
        "capital fractions total 110.0% (over 100%)",
    ),
    "negative fraction": (_bot(capital_fraction="-0.1"), "capital_fraction must be in [0, 1]"),
    "non-finite fraction": (_bot(capital_fraction="nan"), "capital_fraction must be a finite"),
    "infinite fraction": (_bot(capital_fraction="inf"), "capital_fraction must be a finite"),
    "unknown venue": (_bot(venues='["kraken"]'), "unknown venue 'kraken'"),
    "unknown interval": (_bot(interval='"90m"'), "unknown interval '90m'"),
    "duplicate names": (_bot() + _bot(capital_fraction="0.1"), "bot name 'b1' is used twice"),
    "risk limit out of range": (
        _bot(risk="{ daily_loss = 1.5 }"),
        "risk limit daily_loss must be in (0, 1]",
    ),
    "risk limit not finite": (_bot(risk="{ max_drawdown = nan }"), "max_drawdown must be a finite"),
    "unknown risk limit": (_bot(risk="{ daily = 0.1 }"), "unknown risk limit 'daily'"),
    "unknown key": (_bot(capital=0.5), "unknown key 'capital'"),
    "venue of a symbol": (
        _bot(symbols='["coinbase:BTCUSD"]'),
        "names venue 'coinbase', not one of its venues",
    ),
    "folder-unsafe name": (_bot(name='"../x"'), "must be lower-case letters"),
    "bad default params": (
        _bot(default_family='"sma_cross"', default_params="{ fast = -3 }"),
        "default_params",
    ),
    "no bots": ("[fleet]\ndaily_loss = 0.1\n", "a fleet needs at least one bot"),
    "not TOML": ("[[bots]\nname = ", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_broken_fleet_file_is_one_error_line_and_exit_2(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text, reason = BAD_FILES[case]
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    monkeypatch.setenv("TP_FLEET_FILE", str(path))
    with pytest.raises(FleetFileError, match="fleet file"):
        load_fleet(path)
    code, out, err = _cli(capsys, "fleet", "show")
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: fleet file {path}: ") and reason in lines[0], lines[0]
    # a command that would write under the bots dir changes nothing
    bots = tmp_path / "bots"
    code, _, err = _cli(capsys, "fleet", "allocate", "--bots-dir", str(bots))
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: fleet file")
    assert not bots.exists()


def test_a_missing_fleet_file_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TP_FLEET_FILE", str(tmp_path / "nope.toml"))
    code, _, err = _cli(capsys, "fleet", "show")
    assert code == 2
    assert err.splitlines() == [
        f"error: fleet file {tmp_path / 'nope.toml'}: cannot read it (No such file or directory)"
    ]


@pytest.mark.slow
def test_the_installed_command_refuses_a_broken_fleet_file(tmp_path: Path) -> None:
    """The real ``trading-pipeline`` process: one ``error:`` line on stderr, exit status 2."""
    path = tmp_path / "fleet.toml"
    path.write_text(_bot(venues='["kraken"]'))
    env = {**os.environ, "TP_FLEET_FILE": str(path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    code = "import sys; from trading_pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "fleet", "show", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: fleet file {path}: bot b1: unknown venue 'kraken' "
        "(known: binance, binanceus, coinbase)"
    ]
