"""Benchmark: the 5-minute decision, from candles in memory to a choice per bot.

Data: the real Roshan BTC/ETH and wuTribe BNB hourly feathers under ``../shared/data/real``
(cut to the hours all three share) when present, else seeded synthetic bars. The selector is a
real :class:`~trading_pipeline.selector.model.SelectorModel` (impute → scale → logistic
regression over the real state features of the three series), fitted on the bars *before* the
timed window; what it predicts does not matter here, only how long a decision takes.

Timed, 1,000 decisions (``--n``), each at the next hour, alternating with the anchor:

* ``decide_once``: state (``selector.state.latest_state``) + model + regime of record
  (rules labeller on 400 days of hourly bars) + inputs hash + eligibility, renormalisation and
  hysteresis for the five bots. The bars (``bars_needed`` per series, about 9,600) are already
  in memory: slicing them is not timed; fetching and recording are not part of it.
* the anchor: the bare ``model.predict_proba`` on a precomputed state row (the part no
  decision can avoid).

Printed: p50/p99 of both, their ratio, the parts (state, regime, hash) at p50, and for scale
what reading the same bars from a Parquet store costs (a tick adds it; it is not timed above).
Target: p99 < 50 ms.

    .venv/bin/python benchmarks/bench_decision.py [--n 1000] [--synthetic]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trading_pipeline.bots.spec import FLEET
from trading_pipeline.history.convert import write_parquet
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.regimes import current_regime, get_labeller
from trading_pipeline.regimes.synthetic import synthetic_bars
from trading_pipeline.selector.decide import bars_needed, decide_once, regime_lookback
from trading_pipeline.selector.decisions import Decision, inputs_hash
from trading_pipeline.selector.live import StoreCandles
from trading_pipeline.selector.model import CASH, Candidate, ModelConfig, SelectorModel
from trading_pipeline.selector.model import make_pipeline as selector_pipeline
from trading_pipeline.selector.state import (
    STATE_WARMUP_BARS,
    feature_names,
    latest_state,
    state_frame,
)

REAL = Path(
    os.environ.get("TP_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
)
FILES = {
    "spot-BTCUSDT-1h": "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather",
    "spot-ETHUSDT-1h": "Roshan7869-algotrading/freqtrade_binance_spot_1h/ETH_USDT-1h.feather",
    "spot-BNBUSDT-1h": "wuTribe-freqtrade/freqtrade_binance_spot_1h/BNB_USDT-1h.feather",
}
TRAIN_BARS = 6000


def load(synthetic: bool, needed: int) -> tuple[dict[str, pl.DataFrame], str]:
    if not synthetic and all((REAL / f).exists() for f in FILES.values()):
        frames = {k: read_candle_file(REAL / f) for k, f in FILES.items()}
        end = min(df["open_time"].max() for df in frames.values())  # type: ignore[type-var]
        return {k: df.filter(pl.col("open_time") <= end) for k, df in frames.items()}, "real"
    n = needed + TRAIN_BARS
    out = {}
    for i, key in enumerate(FILES):
        script = [("bull", n // 3), ("bear", n // 3), ("sideways", n - 2 * (n // 3))]
        out[key] = synthetic_bars(script, seed=11 + i, price=1000.0 * (i + 1))
    return out, "synthetic"


def candidates(series: list[str]) -> tuple[Candidate, ...]:
    families = ("sma_cross", "momentum", "donchian_breakout", "hedging", "rsi_reversion")
    out = [CASH]
    for key in series:
        for fam in families:
            out.append(Candidate(f"{fam}@{key}", fam, 1, {"p": 1}, key, "1h"))
    return tuple(out)


def fit(bars: dict[str, pl.DataFrame], cands: tuple[Candidate, ...]) -> SelectorModel:
    """Logistic regression on the real state; label: the series that rose most over 24 bars."""
    keys = list(bars)
    frame = state_frame(bars, interval="1h")
    names = feature_names(keys)
    closes = frame.select("open_time").join(
        pl.concat(
            [df.select("open_time", pl.col("close").alias(k)) for k, df in bars.items()],
            how="align",
        ),
        on="open_time",
        how="left",
    )
    fwd = np.column_stack(
        [(closes[k].shift(-24) / closes[k]).log().fill_null(0.0).to_numpy() for k in keys]
    )
    best = np.argmax(fwd, axis=1)
    labels = np.where(
        fwd.max(axis=1) <= 0, CASH.id, np.array([f"sma_cross@{k}" for k in keys])[best]
    )
    rows = slice(STATE_WARMUP_BARS, len(labels) - 24)
    x = frame.select(names).to_numpy()
    est = selector_pipeline(ModelConfig("logreg", c=0.1)).fit(x[rows], labels[rows])
    return SelectorModel(
        est,
        candidates=cands,
        feature_names=names,
        series=tuple(keys),
        interval="1h",
        warmup_bars=STATE_WARMUP_BARS,
    )


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000.0, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="decisions to time")
    ap.add_argument("--synthetic", action="store_true", help="use generated bars")
    args = ap.parse_args()

    needed = max(STATE_WARMUP_BARS, regime_lookback("1h")) + 1  # = bars_needed(model)
    bars, source = load(args.synthetic, needed + args.n)
    keys = list(bars)
    height = min(df.height for df in bars.values())
    t0 = time.perf_counter()
    train = {k: df.tail(needed + args.n + TRAIN_BARS).head(TRAIN_BARS) for k, df in bars.items()}
    model = fit(train, candidates(keys))
    fit_s = time.perf_counter() - t0
    assert bars_needed(model) == needed

    # the timed window: the last n hours; each decision sees the `needed` bars closed by then
    tail = {k: df.tail(needed + args.n) for k, df in bars.items()}
    labeller = get_labeller("rules")
    step = timedelta(hours=1)
    current: dict[str, Decision] = {}
    windows = []
    for i in range(args.n):
        window = {k: df.slice(i, needed) for k, df in tail.items()}
        now = window[keys[0]]["open_time"][-1] + step
        windows.append((window, now))
    state0 = latest_state(windows[0][0], interval="1h")

    # warm-up (numba, sklearn first calls)
    decide_once(model, windows[0][0], windows[0][1], {}, labeller=labeller, fleet=FLEET)
    model.predict_proba(state0)

    decision_s, anchor_s, changes = [], [], 0
    for window, now in windows:
        t = time.perf_counter()
        out = decide_once(model, window, now, current, labeller=labeller, fleet=FLEET)
        decision_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.predict_proba(state0)
        anchor_s.append(time.perf_counter() - t)
        changes += sum(d.changed for d in out)
        current = {d.bot: d for d in out}

    parts: dict[str, list[float]] = {"state": [], "regime": [], "hash": []}
    for window, _ in windows[:: max(1, args.n // 100)]:
        t = time.perf_counter()
        latest_state(window, interval="1h")
        parts["state"].append(time.perf_counter() - t)
        t = time.perf_counter()
        current_regime(window[keys[0]], labeller)
        parts["regime"].append(time.perf_counter() - t)
        t = time.perf_counter()
        inputs_hash(window)
        parts["hash"].append(time.perf_counter() - t)

    # not the target, for scale: reading the same bars from the Parquet store (what a tick adds
    # before deciding when the exchange has nothing new)
    with tempfile.TemporaryDirectory() as tmp:
        for key, df in tail.items():
            s = Series.parse(key)
            months = df.with_columns(
                pl.col("open_time").dt.year().alias("_y"),
                pl.col("open_time").dt.month().alias("_m"),
            )
            for (y, m), part in months.group_by(["_y", "_m"]):
                path = HistoryLayout(Path(tmp)).parquet_path(s, int(y), int(m))  # type: ignore[call-overload]
                write_parquet(part.drop("_y", "_m"), path)
        store = StoreCandles(tmp)
        read_s = []
        for _, now in windows[:: max(1, args.n // 20)]:
            t = time.perf_counter()
            store.bars(keys, now=now, lookback=needed)
            read_s.append(time.perf_counter() - t)

    load1, load5, _ = os.getloadavg()
    print(
        f"data: {source}, {len(keys)} series × {needed} hourly bars in memory per decision "
        f"({height} available); model: logistic regression, {len(model.candidates)} candidates, "
        f"{len(model.feature_names)} features (fitted in {fit_s:.1f} s)"
    )
    print(f"machine: {os.cpu_count()} cores, load average {load1:.1f} / {load5:.1f} (1 / 5 min)")
    print(f"{args.n} decisions × 5 bots, {changes} bot changes under hysteresis")
    dp50, dp99 = pct(decision_s, 50), pct(decision_s, 99)
    ap50, ap99 = pct(anchor_s, 50), pct(anchor_s, 99)
    print(
        f"decision (decide_once)     p50 {dp50:7.2f} ms   p99 {dp99:7.2f} ms   target p99 < 50 ms"
    )
    print(f"anchor (predict_proba)     p50 {ap50:7.2f} ms   p99 {ap99:7.2f} ms")
    print(f"ratio decision / anchor    p50 {dp50 / ap50:7.1f} ×    p99 {dp99 / ap99:7.1f} ×")
    print(
        "parts at p50: " + ", ".join(f"{name} {pct(xs, 50):.2f} ms" for name, xs in parts.items())
    )
    print(
        f"not in the timing: the same bars read from a Parquet store, p50 {pct(read_s, 50):.1f} ms"
        f" over {len(read_s)} reads (StoreCandles, 3 series)"
    )


if __name__ == "__main__":
    main()
