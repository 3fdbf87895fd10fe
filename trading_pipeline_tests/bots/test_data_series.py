"""The history series in force: the configured universe and every bot's own series."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from trading_pipeline.bots.data_series import families_for_series, fleet_series, series_in_force
from trading_pipeline.bots.spec import DEFAULT_FLEET, SCALPING_UNIVERSE
from trading_pipeline.history.layout import Series
from trading_pipeline.settings import DEFAULT_SYMBOLS, Settings, SettingsError


def test_every_bots_symbol_at_its_interval_without_venue_candles() -> None:
    keys = [s.key for s in fleet_series(DEFAULT_FLEET.bots)]
    assert len(keys) == len(set(keys))
    for bot in DEFAULT_FLEET.bots:
        for symbol in bot.symbols:
            key = f"spot-{symbol}-{bot.interval}"
            assert (key in keys) == (":" not in symbol), key
    assert {f"spot-{s}-5m" for s in SCALPING_UNIVERSE} <= set(keys)  # bot2
    assert {f"spot-{s}-1h" for s in SCALPING_UNIVERSE} <= set(keys)  # bot3
    assert not any("binanceus" in k or "coinbase" in k or "BTCUSD-" in k for k in keys)  # bot4


def test_the_union_keeps_the_universe_first_and_adds_each_series_once() -> None:
    universe = series_in_force(DEFAULT_SYMBOLS, "1h")
    union = series_in_force(DEFAULT_SYMBOLS, "1h", bots=DEFAULT_FLEET.bots)
    assert union[: len(universe)] == universe
    assert len({s.key for s in union}) == len(union)
    fleet = {s.key for s in fleet_series(DEFAULT_FLEET.bots)}
    assert {s.key for s in union} == fleet | {s.key for s in universe}
    # a universe at another interval stays, beside the bots' series
    assert series_in_force(["BTCUSDT"], "4h", bots=DEFAULT_FLEET.bots)[0].key == "spot-BTCUSDT-4h"


def test_a_series_is_tuned_on_the_families_of_the_bots_trading_it() -> None:
    tunable = {f for b in DEFAULT_FLEET.bots for f in b.families}
    bot2 = DEFAULT_FLEET.bot("bot2").families
    bot3 = DEFAULT_FLEET.bot("bot3").families
    assert families_for_series(Series("spot", "SOLUSDT", "5m"), DEFAULT_FLEET.bots, tunable) == (
        bot2
    )
    assert families_for_series(Series("spot", "SOLUSDT", "1h"), DEFAULT_FLEET.bots, tunable) == (
        bot3
    )
    btc = families_for_series(Series("spot", "BTCUSDT", "1h"), DEFAULT_FLEET.bots, tunable)
    assert set(bot3) <= set(btc) and "sma_cross" in btc  # bot1, bot3 and bot5 trade it
    assert families_for_series(Series("spot", "SOLUSDT", "4h"), DEFAULT_FLEET.bots, tunable) == ()


def test_tp_fleet_series_is_on_by_default_and_checked() -> None:
    assert Settings.from_env({}).fleet_series is True
    assert Settings.from_env({"TP_FLEET_SERIES": "OFF"}).fleet_series is False
    with pytest.raises(SettingsError, match="TP_FLEET_SERIES must be on or off"):
        Settings.from_env({"TP_FLEET_SERIES": "maybe"})


def test_bot3_picks_its_top_five_per_the_fleet_file() -> None:
    bot3 = DEFAULT_FLEET.bot("bot3")
    assert (bot3.momentum_top, bot3.momentum_lookback) == (5, 168)
    assert all(b.momentum_top == 0 for b in DEFAULT_FLEET.bots if b.name != "bot3")
    shown = next(b for b in DEFAULT_FLEET.to_dict()["bots"] if b["name"] == "bot3")
    assert shown["momentum_top"] == 5


@pytest.mark.parametrize("value", ["11", "-1", "2.5", "true"])
def test_a_momentum_top_outside_the_bots_symbols_is_refused(value: str) -> None:
    from trading_pipeline.bots.fleet_file import (
        FleetFileError,
        default_fleet_text,
        parse_fleet_text,
    )

    text = default_fleet_text().replace("momentum_top = 5", f"momentum_top = {value}")
    with pytest.raises(FleetFileError, match="bot bot3: momentum_top must be a whole number"):
        parse_fleet_text(text, "x.toml")


def test_fleet_status_shows_the_momentum_pick_behind_bot3s_assignment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from trading_pipeline.bots.deploy_store import DeploymentStore
    from trading_pipeline.bots.fleet import candidates_from_decisions
    from trading_pipeline.cli import main
    from trading_pipeline.market.momentum_pick import momentum_pick
    from trading_pipeline.selector.decisions import Decision
    from trading_pipeline.strategies.registry import get_family
    from trading_pipeline_tests.fakes.bars import START, make_bars

    at = START + timedelta(hours=200)
    frames = {s: make_bars(300, seed=i) for i, s in enumerate(SCALPING_UNIVERSE[:6])}
    pick = momentum_pick(frames, at=at, interval="1h", top=5, lookback=168)
    symbol = pick.picked[0]
    decision = Decision(
        decided_at=datetime.now(UTC),
        bot="bot3",
        choice=f"momentum@spot-{symbol}-1h",
        family="momentum",
        version=get_family("momentum").version,
        params={},
        series=f"spot-{symbol}-1h",
        symbols=(symbol,),
        regime="unknown",
        probabilities={},
        inputs_hash="x",
        model_name="strategy-selector",
        model_version=1,
        model_run_id=None,
        changed=True,
        reason=f"first model decision; {pick.describe()}",
    )
    (bot3,) = [c for c in candidates_from_decisions({"bot3": decision}, {}) if c.bot == "bot3"]
    store = DeploymentStore(tmp_path / "bots")
    report = store.deploy([bot3])
    assert not report.refused, report.refused
    # the assignment file records the pick ...
    saved = json.loads((tmp_path / "bots" / "bot3" / "assignment.json").read_text())
    assert pick.describe() in saved["lineage"]["reason"]
    # ... and fleet status shows it
    assert main(["fleet", "status", "--bots-dir", str(tmp_path / "bots")]) == 0
    out = capsys.readouterr().out
    assert "bot3: first model decision; momentum top 5 of 6" in " ".join(out.split())
    assert main(["fleet", "status", "--json", "--bots-dir", str(tmp_path / "bots")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["assignments"]["bot3"]["interval"] == "1h"
    assert pick.describe() in data["assignments"]["bot3"]["reason"]
