"""Fast checks of the audit's parts: the shock scan, scalar meta, swallowed outside input, shapes."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest

from trading_pipeline.regimes.synthetic import synthetic_bars
from trading_pipeline.strategies.base import Params, Signals
from trading_pipeline.strategies.lookahead import audit_family, param_sets
from trading_pipeline.strategies.sandbox import OutsideInput, no_outside_input
from trading_pipeline_tests.strategies import leaky_families as lf


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars((("sideways", 900), ("bull", 900), ("bear_highvol", 900)), seed=3)


def test_shock_scan_finds_a_rare_suppressed_entry(bars: pl.DataFrame) -> None:
    fam = lf.SuppressBeforeDrop()
    params = [fam.default_params()]
    # Truncation points alone miss it: a skipped entry leaves no change point to cut at.
    blind = audit_family(fam, bars, params=params, shock=False, recursive=False)
    assert blind.verdict == "clean"
    report = audit_family(fam, bars, params=params, recursive=False)
    assert report.verdict == "leaky"
    f = report.findings[0]
    assert f.kind == "lookahead" and f.field == "flags" and "scaled by" in f.detail
    assert f.bar == f.truncated_at  # the entry of the cut run's last bar differs


def test_scalar_meta_from_the_full_sample_is_caught(bars: pl.DataFrame) -> None:
    r = audit_family(lf.MetaScalarQuantile(), bars.head(800), samples=0, recursive=False)
    assert r.verdict == "leaky"
    assert r.findings[0].field == "meta.take_profit"


def test_nested_and_list_meta_are_compared(bars: pl.DataFrame) -> None:
    class NestedLeak(lf._Family):
        name: ClassVar[str] = "nested_leak"

        def signals(self, frame: pl.DataFrame, params: Params) -> Signals:
            e, x = lf.sma_cross(frame)
            sig = Signals.from_arrays(e, x)
            sig.meta["exits"] = {"target": lf.col(frame, pl.col("high").shift(-3)).to_list()}
            return sig

    r = audit_family(NestedLeak(), bars.head(800), samples=0, recursive=False, shock=False)
    assert r.verdict == "leaky"
    assert r.findings[0].field == "meta.exits.target"


def test_outside_input_is_seen_even_when_swallowed(tmp_path: Path, bars: pl.DataFrame) -> None:
    path = tmp_path / "daily.csv"
    pl.DataFrame({"close": [1.0, 2.0]}).write_csv(path)
    with no_outside_input() as refused:
        with pytest.raises(OutsideInput):
            path.read_text()
        with contextlib.suppress(OutsideInput):
            pl.read_csv(path)
    assert len(refused) == 2 and "daily.csv" in refused[0]
    assert path.read_text()  # outside the block, reading works again
    lf.DailyFromPolarsFile.path = str(path)
    r = audit_family(lf.DailyFromPolarsFile(), bars.head(300), samples=0)
    assert r.verdict == "leaky" and r.findings[0].kind == "outside-input"


def test_signals_that_fail_only_on_truncated_bars_are_an_error(bars: pl.DataFrame) -> None:
    class NeedsAll(lf._Family):
        name: ClassVar[str] = "needs_all"

        def signals(self, frame: pl.DataFrame, params: Params) -> Signals:
            if frame.height < 2000:
                raise ValueError("not enough bars")
            return Signals.from_arrays(*lf.sma_cross(frame))

    r = audit_family(NeedsAll(), bars, samples=0, recursive=False)
    assert r.verdict == "leaky" and r.findings[0].kind == "error"


def test_wrong_length_stop_distance_is_an_error(bars: pl.DataFrame) -> None:
    class ShortStop(lf._Family):
        name: ClassVar[str] = "short_stop"

        def signals(self, frame: pl.DataFrame, params: Params) -> Signals:
            e, x = lf.sma_cross(frame)
            return Signals.from_arrays(e, x, stop_distance=np.ones(frame.height - 1))

    r = audit_family(ShortStop(), bars.head(300), samples=0)
    assert r.verdict == "leaky" and r.findings[0].kind == "error"
    assert "stop distance" in r.findings[0].detail


def test_param_sets_reach_every_choice_and_bound() -> None:
    sets = param_sets(lf.LeakAtChoice(), samples=0)
    assert {s["mode"] for s in sets} == {"sma", "ema", "smooth"}
    assert {8, 48} <= {s["window"] for s in sets}
