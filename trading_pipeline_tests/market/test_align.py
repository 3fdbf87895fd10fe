"""Two venues' bars aligned on UTC open time; the basis; the real Coinbase × Binance overlap."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.feather as feather
import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.align import align_venues, alignment_report, basis
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline_tests.fakes.bars import make_bars

BINANCE = "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
COINBASE = "saijayanth888-trading-bot/freqtrade_coinbase_spot_1h/BTC_USD-1h.feather"


def _pair() -> tuple[pl.DataFrame, pl.DataFrame]:
    a = make_bars(100, seed=1)
    b = make_bars(100, seed=1).with_columns(pl.col("close") * 1.001)
    return a, b


def test_inner_join_excludes_and_counts_missing_bars() -> None:
    a, b = _pair()
    a = a.filter(~pl.int_range(pl.len()).is_in([3, 4, 50]))  # a's outage
    b = b.head(90).filter(pl.int_range(pl.len()) != 10)  # b's outage and shorter history
    aligned = align_venues(a, b, interval="1h")
    assert aligned.columns == [
        "open_time",
        *(f"a_{c}" for c in ("open", "high", "low", "close", "volume")),
        *(f"b_{c}" for c in ("open", "high", "low", "close", "volume")),
    ]
    # present on both: bars 0..89 minus {3, 4, 10, 50}
    assert aligned.height == 90 - 4
    assert aligned["open_time"].is_sorted()
    rep = alignment_report(a, b, interval="1h")
    assert (rep.a_bars, rep.b_bars, rep.overlap) == (97, 89, 86)
    assert rep.a_only == 97 - 86 and rep.b_only == 89 - 86
    assert rep.a_only_in_span == 1  # bar 10, b's gap inside the common span
    assert rep.b_only_in_span == 3  # bars 3, 4, 50
    assert rep.first == a["open_time"][0] and rep.last == b["open_time"][-1]


def test_basis_is_b_over_a_in_bps() -> None:
    a, b = _pair()
    bs = basis(align_venues(a, b, interval="1h"))
    assert bs.columns == ["open_time", "basis_bps", "log_basis_bps"]
    np.testing.assert_allclose(bs["basis_bps"].to_numpy(), 10.0, rtol=1e-9)
    np.testing.assert_allclose(bs["log_basis_bps"].to_numpy(), np.log(1.001) * 1e4, rtol=1e-9)
    rep = alignment_report(a, b, interval="1h")
    assert rep.median_abs_basis_bps == pytest.approx(10.0)
    assert rep.p99_abs_basis_bps == pytest.approx(10.0)


def test_duplicates_are_refused_not_deduplicated() -> None:
    a, b = _pair()
    dup = pl.concat([b, b.slice(5, 1)])
    with pytest.raises(UserInputError, match="venue b has 1 duplicate open time"):
        align_venues(a, dup, interval="1h")


def test_naive_times_are_utc_and_off_grid_bars_are_dropped() -> None:
    a, b = _pair()
    naive = b.with_columns(pl.col("open_time").dt.replace_time_zone(None))
    off = pl.DataFrame(
        {
            "open_time": [datetime(2020, 1, 1, 5, 28, tzinfo=UTC)],
            **{c: [1.0] for c in ("open", "high", "low", "close", "volume")},
        }
    ).with_columns(pl.col("open_time").cast(pl.Datetime("us", "UTC")))
    a2 = pl.concat([a.select(off.columns), off]).sort("open_time")
    aligned = align_venues(a2, naive, interval="1h")
    assert aligned.height == 100
    assert aligned["open_time"].dtype == pl.Datetime("us", "UTC")
    rep = alignment_report(a2, naive, interval="1h")
    assert rep.a_off_grid == 1 and rep.overlap == 100


def test_bad_input_is_a_user_error() -> None:
    a, b = _pair()
    with pytest.raises(UserInputError, match="unknown interval"):
        align_venues(a, b, interval="7h")
    with pytest.raises(UserInputError, match="lack column"):
        align_venues(a.drop("close"), b, interval="1h")


def _independent(path: Path) -> dict[int, float]:
    """Hour (epoch seconds) -> close, read with pyarrow alone (not the project's reader)."""
    t = feather.read_table(path)
    unit = str(t.schema.field("date").type)
    per_second = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000}[unit.split("[")[1][:2]]
    secs = t.column("date").cast("int64").to_numpy() // per_second
    return dict(zip(secs.tolist(), t.column("close").to_numpy().tolist(), strict=True))


def test_real_coinbase_binance_overlap(real_data: Path) -> None:
    """The 2024-04..2026-05 hourly overlap, checked against an independent computation."""
    a = read_candle_file(real_data / BINANCE)
    b = read_candle_file(real_data / COINBASE)
    aligned = align_venues(a, b, interval="1h")
    rep = alignment_report(a, b, interval="1h", aligned=aligned)

    ia, ib = _independent(real_data / BINANCE), _independent(real_data / COINBASE)
    common = sorted(set(ia) & set(ib))
    ratio = np.array([ib[t] / ia[t] for t in common])
    absb = np.abs(ratio - 1.0) * 1e4
    assert rep.overlap == len(common) == aligned.height
    assert rep.a_only == len(ia) - len(common) and rep.b_only == len(ib) - len(common)
    assert rep.median_abs_basis_bps == pytest.approx(float(np.median(absb)), rel=1e-9)
    assert rep.p99_abs_basis_bps == pytest.approx(float(np.percentile(absb, 99)), rel=1e-9)
    assert rep.max_abs_basis_bps == pytest.approx(float(absb.max()), rel=1e-9)
    # the hours Coinbase lacks inside the common span (its outages), counted independently
    lo, hi = max(min(ia), min(ib)), min(max(ia), max(ib))
    assert rep.a_only_in_span == sum(1 for t in ia if lo <= t <= hi and t not in ib)
    # sanity bounds (SOURCES.md: about 18k hours, median ~3 bps, p99 ~18 bps, max ~37 bps)
    assert rep.first is not None and rep.last is not None
    assert rep.first.year == 2024 and rep.first.month == 4
    assert rep.last.year == 2026 and rep.last.month == 5
    assert 17_000 < rep.overlap < 19_000
    assert 1.0 < rep.median_abs_basis_bps < 10.0
    assert 5.0 < rep.p99_abs_basis_bps < 50.0
    assert rep.max_abs_basis_bps < 100.0
    assert rep.a_off_grid == rep.b_off_grid == 0
