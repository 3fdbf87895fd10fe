"""``trading-pipeline plot``: an interactive HTML page of one backtest, drawn from its numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from trading_pipeline.backtest import engine
from trading_pipeline.backtest.engine import CostModel
from trading_pipeline.charts.backtest_chart import on_price_scale
from trading_pipeline.cli import main
from trading_pipeline_tests.fakes.bars import make_bars

pytestmark = pytest.mark.slow  # plotly's 4 MB page per test


def _figure(html: str) -> dict:
    """The figure plotly embedded in the page (its JSON argument to Plotly.newPlot)."""
    m = re.search(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", html)
    assert m, "no Plotly.newPlot call in the page"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(html, m.end())
    layout, _ = decoder.raw_decode(html, html.index("{", end))
    return {"data": data, "layout": layout}


def test_plot_draws_candles_indicators_trades_and_both_equity_curves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = make_bars(1200, seed=13)
    data = tmp_path / "bars.parquet"
    bars.write_parquet(data)
    out = tmp_path / "chart.html"
    argv = ["plot", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=30"]
    argv += ["--data", str(data), "--indicator", "ema", "--indicator", "rsi", "--out", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out)
    fig = _figure(out.read_text())
    names = [t.get("name") for t in fig["data"]]
    assert names[0] == "candles" and "ema" in names and "rsi" in names
    assert {"entry signal", "exit signal", "strategy equity", "buy and hold"} <= set(names)
    ref = engine.backtest(bars, "sma_cross", {"fast": 5, "slow": 30}, interval="1h",
                          costs=CostModel(), detail=True)  # fmt: skip
    assert ref.trades is not None and ref.equity is not None
    closed = ref.trades.filter(ref.trades["exit_bar"] >= 0).height
    assert names.count("trade") == closed > 0
    equity = next(t for t in fig["data"] if t.get("name") == "strategy equity")
    assert np.allclose(equity["y"], ref.equity)
    ema = next(t for t in fig["data"] if t.get("name") == "ema")
    rsi = next(t for t in fig["data"] if t.get("name") == "rsi")
    assert ema.get("yaxis", "y") == "y" and rsi.get("yaxis") == "y2"  # price scale vs its own
    assert "buy and hold" in fig["layout"]["title"]["text"]


def test_price_scale_rule() -> None:
    close = np.linspace(100, 120, 50)
    assert on_price_scale(close * 1.01, close)
    assert not on_price_scale(np.full(50, 55.0) / 10, close)
    assert not on_price_scale(np.full(50, np.nan), close)


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--indicator", "ema_50"], "unknown indicator ema_50"), (["--out", "x.png"], ".html")],
)
def test_bad_plot_options_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    data = tmp_path / "bars.parquet"
    make_bars(300, seed=1).write_parquet(data)
    before = sorted(tmp_path.rglob("*"))
    assert main(["plot", "--strategy", "sma_cross", "--data", str(data), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_plot_a_bots_ledger_after_a_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trading_pipeline_tests.fakes.store import write_frames

    data_dir = tmp_path / "data"
    frames = {s: make_bars(900, seed=i, vol=0.006) for i, s in enumerate(("BTCUSDT", "ETHUSDT",
                                                                         "BNBUSDT"))}  # fmt: skip
    write_frames(data_dir / "history", frames)
    monkeypatch.setenv("TP_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TP_BOTS_DIR", str(tmp_path / "bots"))
    first = frames["BTCUSDT"]["open_time"][100].date().isoformat()
    last = frames["BTCUSDT"]["open_time"][800].date().isoformat()
    argv = ["bot", "run", "--bot", "bot1", "--replay-from", first, "--replay-to", last]
    assert main(argv) == 0
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the replay's ledger lives in its replay folder; chart the live paper ledger path instead
    ledger = Path(run["ledger"])
    target = tmp_path / "bots" / "bot1" / "paper" / "ledger.sqlite"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(ledger.read_bytes())
    out = tmp_path / "ledger.html"
    assert main(["plot", "--ledger", "bot1", "--out", str(out)]) == 0
    fig = _figure(out.read_text())
    names = [t.get("name") for t in fig["data"]]
    assert "equity" in names and any(n and n.endswith(" buy") for n in names)
    buys = sum(len(t["x"]) for t in fig["data"] if (t.get("name") or "").endswith(" buy"))
    sells = sum(len(t["x"]) for t in fig["data"] if (t.get("name") or "").endswith(" sell"))
    assert buys + sells == run["fills"] > 0
    assert main(["plot", "--ledger", "bot2", "--out", str(out)]) == 2  # never ran
    assert "no paper ledger for bot2" in capsys.readouterr().err
