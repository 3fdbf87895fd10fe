"""The lookahead audit's time per built-in family on 5 years of hourly bars, against one plain
``signals()`` call on the same bars (the anchor), with the ratio.

Data: the last 43,800 bars of real BTCUSDT 1h (the freqtrade feather listed in the shared
data's MANIFEST.tsv, as ``bench_backtest.py`` uses) when present, else seeded synthetic bars
with regimes (and it says so). Each family is audited with the defaults of
:func:`~trading_pipeline.strategies.lookahead.audit_family` (the parameter sets of
``param_sets(samples=6)``, change-point/random/warm-up truncation points, the shock scan and the
recursive check). The load average is printed because the machine is shared.

Run: ``make bench-lookahead`` (or ``.venv/bin/python benchmarks/bench_lookahead.py [family ...]``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import polars as pl

BTC_1H = "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
HOURS_5Y = 43_800


def real_btc_1h() -> Path | None:
    """The BTCUSDT 1h feather listed in the nearest ``shared/data/real/MANIFEST.tsv`` above this
    file (a worktree sits one level deeper than the main checkout)."""
    for parent in Path(__file__).resolve().parents:
        root = parent / "shared/data/real"
        manifest = root / "MANIFEST.tsv"
        if manifest.is_file():
            listed = {line.split("\t", 1)[0] for line in manifest.read_text().splitlines()}
            if BTC_1H in listed and (root / BTC_1H).is_file():
                return root / BTC_1H
    return None


def hourly_bars() -> tuple[pl.DataFrame, str]:
    real = real_btc_1h()
    if real is not None:
        from trading_pipeline.market.candles import read_candle_file

        return read_candle_file(real).tail(HOURS_5Y), f"real BTCUSDT 1h ({real.name})"
    from trading_pipeline.regimes.synthetic import synthetic_bars

    script = (("sideways", 8000), ("bull", 12000), ("bear_highvol", 8000), ("sideways", 15800))
    return synthetic_bars(script, seed=42), "SYNTHETIC bars (real BTCUSDT 1h not found)"


def main(names: list[str]) -> None:
    from trading_pipeline.strategies.lookahead import audit_family
    from trading_pipeline.strategies.registry import FAMILIES

    bars, source = hourly_bars()
    print(f"lookahead audit on {bars.height:,} bars of {source}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")
    header = (
        f"{'family':20} {'verdict':12} {'sets':>4} {'points':>6} {'shocks':>6} "
        f"{'audit s':>8} {'signals ms':>10} {'ratio':>8}  stable  shock scan"
    )
    print(header)
    total = 0.0
    for name in names or sorted(FAMILIES):
        fam = FAMILIES[name]
        params = fam.default_params()
        fam.signals(bars.head(500), params)  # compile / load numba caches
        anchor = min(_timed(lambda f=fam, p=params: f.signals(bars, p)) for _ in range(3))
        report = audit_family(fam, bars, data=source)
        total += report.seconds
        print(
            f"{name:20} {report.verdict:12} {report.param_sets:>4} {report.points:>6} "
            f"{report.shock_runs:>6} {report.seconds:>8.1f} {anchor * 1e3:>10.2f} "
            f"{report.seconds / anchor:>8.0f}  {'yes' if report.stable else 'no':6}  "
            f"{report.param_sets - report.shock_partial}/{report.param_sets} sets complete",
            flush=True,
        )
        for finding in report.findings[:1] + report.recursive[:1]:
            print(f"    {finding.describe()}")
    print(f"total audit time {total:.1f} s; load average at end: {os.getloadavg()[0]:.2f}")


def _timed(call: object) -> float:
    t0 = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - t0


if __name__ == "__main__":
    main(sys.argv[1:])
