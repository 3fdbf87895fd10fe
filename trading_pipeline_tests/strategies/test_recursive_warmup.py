"""Every built-in family declares a warm-up long enough for its recursive indicators (EMA,
Wilder): after it, signals do not depend on how much history came before (the recursive
check), for every parameter set the audit tries; the audit command reports them clean."""

from __future__ import annotations

import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies.lookahead import default_audit_bars, param_sets, recursive_check
from trading_pipeline.strategies.registry import FAMILIES


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    frame, _ = default_audit_bars(None)  # the audit's own seeded bars with regimes
    return frame


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_recursive_check_passes_for_every_parameter_set(name: str, bars: pl.DataFrame) -> None:
    fam = FAMILIES[name]
    findings = [
        f for p in param_sets(fam, samples=6, seed=0) for f in recursive_check(fam, bars, p)
    ]
    assert findings == [], findings[0].detail if findings else ""


def test_recursive_smoothers_declare_their_memory() -> None:
    """The seed's weight after the declared warm-up is below the decay bound."""
    for window in (2, 14, 26, 100, 400):
        alpha = 2.0 / (window + 1.0)
        assert (1 - alpha) ** (ind.ema_warmup(window) - window) < ind.SEED_DECAY
        assert (1 - 1 / window) ** (ind.wilder_warmup(window) - window - 1) < ind.SEED_DECAY
    assert FAMILIES["ema_cross"].warmup({"fast": 12, "slow": 26}) == ind.ema_warmup(26)
    assert FAMILIES["rsi_reversion"].warmup(FAMILIES["rsi_reversion"].default_params()) > 14 * 10


@pytest.mark.slow  # three audits of several seconds each
@pytest.mark.parametrize("name", ["ema_cross", "macd", "rsi_reversion"])
def test_the_audit_reports_them_clean_not_unstable(
    name: str,
    tmp_path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    code = main(["lookahead", "--strategy", name, "--samples", "2", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "CLEAN" in out and "unstable" not in out
