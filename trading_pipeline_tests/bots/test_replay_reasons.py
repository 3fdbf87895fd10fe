"""A paper replay shows every bot trading, or holding cash for a stated reason; bot3 trades
only inside its momentum top-5 at the start, computed from bars closed by then."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from trading_pipeline.bots.assignment import Assignment, RiskLimits, TradingCosts
from trading_pipeline.bots.cash_reason import cash_reasons
from trading_pipeline.bots.replay import ReplayResult, replay_fleet, store_loader, summary
from trading_pipeline.bots.spec import current_fleet
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.store import write_frames

from .conftest import START

pytestmark = pytest.mark.slow  # five bots replayed over hundreds of bars

FROM, TO = datetime(2020, 1, 15, tzinfo=UTC), datetime(2020, 1, 25, tzinfo=UTC)
COINS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")


def _check_every_bot(report: dict[str, Any]) -> None:
    """Five bots, each with an assignment and either a strategy's PnL or a cash reason."""
    assert list(report["bots"]) == list(current_fleet().names)
    for name, b in report["bots"].items():
        assert b["assignment"]["family"] and b["assignment"]["interval"], name
        if b["family"] == "cash":
            assert b["cash_reason"], f"{name} holds cash without a stated reason"
            assert b["pnl"] == pytest.approx(0.0)
        else:
            assert b["cash_reason"] is None, name
            assert b["pnl"] == pytest.approx(b["final"] - b["initial"])


def _drifting_history(tmp_path: Path) -> Path:
    """Six of bot3's ten coins with hourly history, drifting apart (SOL up most, BTC down most);
    no 5-minute history and no tuned study at all. Returns the data dir."""
    data = tmp_path / "data"
    frames = {
        s: make_bars(800, seed=i, vol=0.004, drift=0.0015 * (i - 1), start=START)
        for i, s in enumerate(COINS)
    }
    frames["BTCUSDT"] = make_bars(800, seed=11, vol=0.004, drift=-0.003, start=START)
    write_frames(data / "history", frames)
    return data


def test_five_bots_each_trade_or_say_why_they_hold_cash(tmp_path: Path) -> None:
    data = _drifting_history(tmp_path)
    momentum = get_family("momentum")
    bot3 = Assignment(
        "bot3",
        2,
        ("BTCUSDT", "SOLUSDT"),
        "1h",
        "momentum",
        momentum.version,
        momentum.validate({}),
        0.25,
        RiskLimits(),
        lineage={"source": "selector", "reason": "test assignment"},
        costs=TradingCosts(),
    )
    layout = DataLayout.under(data)
    assignments = {"bot3": bot3}
    reasons = cash_reasons(layout, current_fleet().bots, assignments)
    r = replay_fleet(
        start=FROM,
        end=TO,
        out_dir=tmp_path / "report",
        load=store_loader(layout.history_dir, start=FROM, end=TO),
        assignments=assignments,
        reasons=reasons,
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    _check_every_bot(report)
    bots = report["bots"]
    assert bots["bot1"]["family"] == "sma_cross" and bots["bot1"]["fills"]
    assert bots["bot5"]["family"] == "hedging"
    assert bots["bot2"]["cash_reason"].startswith("no tuned study for spot-BTCUSDT-5m")
    assert "rsi_reversion" in bots["bot2"]["cash_reason"]
    assert bots["bot4"]["cash_reason"].startswith("arbitrage: no arbitrage study yet")
    # bot3: its top-5 at the start, from the six coins with history; BTC (falling) is out, so
    # the assignment trades SOL only and both are recorded
    pick = bots["bot3"]["momentum_pick"]
    assert pick["top"] == 5 and len(pick["picked"]) == 5 and "BTCUSDT" not in pick["picked"]
    assert set(pick["unranked"]) == {"DOGEUSDT", "LTCUSDT", "LINKUSDT", "AVAXUSDT"}
    assert pick["at"] == FROM.isoformat()
    assert bots["bot3"]["assignment"]["symbols"] == ["BTCUSDT", "SOLUSDT"]
    assert bots["bot3"]["symbols"] == ["SOLUSDT"] and bots["bot3"]["family"] == "momentum"
    assert {f["symbol"] for f in bots["bot3"]["fills"]} <= {"SOLUSDT"}
    assert r.bots["bot3"].momentum_pick == pick


def test_a_study_report_turns_into_the_arbitrage_reason(tmp_path: Path) -> None:
    layout = DataLayout.under(tmp_path / "data")
    layout.venue_basis_dir.mkdir(parents=True)
    study = {"net_arb_pnl": -3.5, "folds": [{}, {}, {}, {}], "folds_in_cash": 4}
    (layout.venue_basis_dir / "a__b.arbitrage.json").write_text(json.dumps(study))
    layout.discovery_dir.mkdir(parents=True)
    ranked = [{"strategy": "ema_cross", "series": "spot-SOLUSDT-5m"}]
    layout.top_strategies_path.write_text(json.dumps({"ranked": ranked}))
    reasons = cash_reasons(layout, current_fleet().bots, {})
    assert reasons["bot4"].startswith("arbitrage: no spread survives costs")
    assert "4 of 4 folds in cash" in reasons["bot4"]
    assert reasons["bot2"].startswith("tuned on 1 of 10 of its series")
    assert reasons["bot3"].startswith("no tuned study for spot-BTCUSDT-1h")
    assert "bot1" not in reasons and "bot5" not in reasons  # their spec defaults trade


FREQTRADE = (
    ("Roshan7869-algotrading/freqtrade_binance_spot_1h", "BTC_USDT-1h.feather"),
    ("Roshan7869-algotrading/freqtrade_binance_spot_1h", "ETH_USDT-1h.feather"),
    ("wuTribe-freqtrade/freqtrade_binance_spot_1h", "BNB_USDT-1h.feather"),
)


@pytest.mark.real_data
def test_a_real_month_replay_gives_every_bot_an_assignment_and_pnl_or_a_reason(
    real_data: Path, tmp_path: Path
) -> None:
    from trading_pipeline.history.importer import import_freqtrade

    src = tmp_path / "freqtrade"
    src.mkdir()
    for folder, name in FREQTRADE:
        path = real_data / folder / name
        if not path.is_file():
            pytest.skip(f"absent: {path}")
        shutil.copy(path, src / name)  # into tmp only: real files never enter the repo
    layout = DataLayout.under(tmp_path / "data")
    import_freqtrade(src, layout=layout.history, exchange="binance", market="spot")
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    reasons = cash_reasons(layout, current_fleet().bots, {})
    r: ReplayResult = replay_fleet(
        start=start,
        end=end,
        out_dir=tmp_path / "report",
        load=store_loader(layout.history_dir, start=start, end=end),
        reasons=reasons,
    )
    report = summary(r)
    _check_every_bot(report)
    assert report["bots"]["bot1"]["fills"]  # the core trend follower traded the real month
    pick = report["bots"]["bot3"]["momentum_pick"]
    assert set(pick["picked"]) == {"BTCUSDT", "ETHUSDT", "BNBUSDT"}  # the three with history
    assert len(pick["unranked"]) == 7
    for name, b in report["bots"].items():
        print(name, b["family"], round(b["pnl"], 2), b["cash_reason"] or "")
    assert pl.DataFrame(r.bots["bot1"].equity).height > 24 * 28


def test_an_assignment_outside_the_momentum_pick_holds_cash_and_says_so(tmp_path: Path) -> None:
    data = _drifting_history(tmp_path)
    momentum = get_family("momentum")
    bot3 = Assignment(
        "bot3", 1, ("BTCUSDT",), "1h", "momentum", momentum.version, momentum.validate({}), 0.25
    )
    layout = DataLayout.under(data)
    r = replay_fleet(
        start=FROM,
        end=TO,
        out_dir=tmp_path / "report",
        load=store_loader(layout.history_dir, start=FROM, end=TO),
        assignments={"bot3": bot3},
        reasons=cash_reasons(layout, current_fleet().bots, {"bot3": bot3}),
    )
    b3 = summary(r)["bots"]["bot3"]
    assert b3["family"] == "cash" and b3["assignment"]["family"] == "momentum"
    assert b3["cash_reason"].startswith("its assigned BTCUSDT not in the momentum pick")
    assert b3["fills"] == [] and b3["pnl"] == pytest.approx(0.0)
