"""The indicator registry: every output the library computes, its family, parameters and backend.

Each :class:`Indicator` is one *function* with one parameter set; its ``outputs`` are the
columns it adds. Only distinct outputs are kept: an output that equals another one (Bollinger's
middle band is the SMA, ``AROONOSC`` is ``aroonup - aroondown``, ``ROCP`` is ``ROC / 100``, a
second period of the same function …) is left out, so ``len(feature_names())`` is an honest
count of distinct indicator outputs.

Cumulative TA-Lib outputs (OBV, A/D, PVT, WAD, NVI, PVI) depend on where the series starts, so a
month computed with a finite warm-up could never equal the whole-history value. They are
exposed as their N-bar change (``diff``) or ratio (``ratio``), which is start-independent and
still checked against TA-Lib.

``memory`` is the extra warm-up (in bars, beyond TA-Lib's lookback) that recursive indicators
(EMA-type smoothing, Wilder averages, SAR, Hilbert transforms, KAMA) need before the start of
the series no longer shows in their value; it was chosen so the month-with-warm-up test in
``trading_pipeline_tests/market/test_features.py`` agrees with the whole-history values to a
relative 1e-6 on BTC hourly bars.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal[
    "trend", "momentum", "volatility", "volume", "price_transform", "statistic", "cycle", "pattern"
]
Backend = Literal["talib", "native"]


@dataclass(frozen=True)
class Indicator:
    """One indicator function with one parameter set and the distinct outputs it contributes."""

    name: str
    family: Family
    backend: Backend
    func: str
    params: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    lookback: int = 0
    memory: int = 0
    transform: Literal["diff", "ratio"] | None = None
    transform_period: int = 24

    @property
    def warmup(self) -> int:
        """Bars needed before the first trustworthy value (lookback plus recursive memory)."""
        extra = self.transform_period if self.transform else 0
        return self.lookback + self.memory + extra


# (TA-Lib function, family, parameter overrides, outputs kept (None = all), transform, memory)
_T = tuple[str, Family, dict[str, Any], tuple[str, ...] | None, str | None, int]

_TALIB: tuple[_T, ...] = (
    # --- overlap studies: trend ---
    ("SMA", "trend", {"timeperiod": 20}, None, None, 0),
    ("EMA", "trend", {"timeperiod": 20}, None, None, 250),
    ("WMA", "trend", {"timeperiod": 20}, None, None, 0),
    ("DEMA", "trend", {"timeperiod": 20}, None, None, 400),
    ("TEMA", "trend", {"timeperiod": 20}, None, None, 500),
    ("TRIMA", "trend", {"timeperiod": 20}, None, None, 0),
    ("KAMA", "trend", {"timeperiod": 10}, None, None, 3000),
    ("T3", "trend", {"timeperiod": 5}, None, None, 300),
    ("HMA", "trend", {"timeperiod": 20}, None, None, 0),
    ("ZLEMA", "trend", {"timeperiod": 20}, None, None, 300),
    ("RMA", "trend", {"timeperiod": 14}, None, None, 400),
    ("VWMA", "trend", {"timeperiod": 20}, None, None, 0),
    ("MAMA", "trend", {}, None, None, 1000),
    ("HT_TRENDLINE", "trend", {}, None, None, 1000),
    ("MIDPOINT", "trend", {"timeperiod": 14}, None, None, 0),
    ("MIDPRICE", "trend", {"timeperiod": 14}, None, None, 0),
    ("SAR", "trend", {}, None, None, 1000),
    ("SUPERTREND", "trend", {}, None, None, 1000),
    ("BBANDS", "volatility", {"timeperiod": 20}, ("upperband", "lowerband"), None, 0),
    ("ACCBANDS", "volatility", {"timeperiod": 20}, ("upperband", "lowerband"), None, 0),
    ("KC", "volatility", {}, ("upperband", "lowerband"), None, 300),
    ("DONCHIAN", "trend", {"timeperiod": 20}, ("upperband", "lowerband"), None, 0),
    ("MAX", "trend", {"timeperiod": 20}, None, None, 0),
    ("MIN", "trend", {"timeperiod": 20}, None, None, 0),
    # --- momentum ---
    ("AC", "momentum", {}, None, None, 0),
    ("ADX", "momentum", {}, None, None, 600),
    ("ADXR", "momentum", {}, None, None, 600),
    ("AO", "momentum", {}, None, None, 0),
    ("APO", "momentum", {"matype": 0}, None, None, 0),  # EMA-APO would equal the MACD line
    ("AROON", "momentum", {}, None, None, 0),
    ("BOP", "momentum", {}, None, None, 0),
    ("CCI", "momentum", {}, None, None, 0),
    ("CMOU", "momentum", {}, None, None, 0),  # TA-Lib CMO (smoothed) is 2 * RSI - 100
    ("COPPOCK", "momentum", {}, None, None, 0),
    ("DPO", "momentum", {}, None, None, 0),
    ("DX", "momentum", {}, None, None, 400),
    ("ER", "momentum", {}, None, None, 0),
    ("ERI", "momentum", {}, None, None, 300),
    ("FOSC", "momentum", {}, None, None, 0),
    ("IMI", "momentum", {}, None, None, 0),
    ("KDJ", "momentum", {}, None, None, 300),
    ("MACD", "momentum", {}, None, None, 500),
    ("MFI", "momentum", {}, None, None, 0),
    ("MINUS_DI", "momentum", {}, None, None, 400),
    ("MINUS_DM", "momentum", {}, None, None, 400),
    ("PLUS_DI", "momentum", {}, None, None, 400),
    ("PLUS_DM", "momentum", {}, None, None, 400),
    ("MOM", "momentum", {}, None, None, 0),
    ("PPO", "momentum", {}, None, None, 400),
    ("ROC", "momentum", {}, None, None, 0),
    ("RSI", "momentum", {}, None, None, 400),
    ("SMI", "momentum", {}, None, None, 500),
    ("STOCH", "momentum", {}, None, None, 0),
    ("STOCHF", "momentum", {}, ("fastk",), None, 0),  # fastd is STOCH slowk
    ("STOCHRSI", "momentum", {}, None, None, 400),
    ("TRIX", "momentum", {}, None, None, 800),
    ("TSI", "momentum", {}, None, None, 500),
    ("ULTOSC", "momentum", {}, None, None, 0),
    ("VHF", "momentum", {}, None, None, 0),
    ("VORTEX", "momentum", {}, None, None, 0),
    ("WILLR", "momentum", {}, None, None, 0),
    ("WAD", "momentum", {}, None, "diff", 0),
    # --- volatility ---
    ("ADR", "volatility", {}, None, None, 0),
    ("ATR", "volatility", {}, None, None, 400),
    ("TRANGE", "volatility", {}, None, None, 0),
    ("CVI", "volatility", {}, None, None, 300),
    ("MASSI", "volatility", {}, None, None, 300),
    ("RVI", "volatility", {}, None, None, 400),
    ("STDDEV", "volatility", {"timeperiod": 20}, None, None, 0),
    ("AVGDEV", "volatility", {}, None, None, 0),
    # --- volume ---
    ("ADOSC", "volume", {}, None, None, 300),
    ("CMF", "volume", {}, None, None, 0),
    ("EFI", "volume", {}, None, None, 300),
    ("MARKETFI", "volume", {}, None, None, 0),
    ("PVO", "volume", {}, None, None, 400),
    ("RVOL", "volume", {}, None, None, 0),
    ("OBV", "volume", {}, None, "diff", 0),
    ("AD", "volume", {}, None, "diff", 0),
    ("PVT", "volume", {}, None, "diff", 0),
    ("NVI", "volume", {}, None, "ratio", 0),
    ("PVI", "volume", {}, None, "ratio", 0),
    ("CORREL", "volume", {"timeperiod": 30}, None, None, 0),
    # --- price transform ---
    ("AVGPRICE", "price_transform", {}, None, None, 0),
    ("MEDPRICE", "price_transform", {}, None, None, 0),
    ("TYPPRICE", "price_transform", {}, None, None, 0),
    ("WCLPRICE", "price_transform", {}, None, None, 0),
    ("HA", "price_transform", {}, ("haopen", "hahigh", "halow"), None, 300),
    # --- statistics ---
    ("BETA", "statistic", {}, None, None, 0),
    ("LINEARREG", "statistic", {}, None, None, 0),
    ("LINEARREG_SLOPE", "statistic", {}, None, None, 0),
    ("LINEARREG_INTERCEPT", "statistic", {}, None, None, 0),
    ("PERCENTILE", "statistic", {}, None, None, 0),
    ("PERCENTRANK", "statistic", {}, None, None, 0),
    # --- cycle (Hilbert transform) ---
    ("HT_DCPERIOD", "cycle", {}, None, None, 1000),
    ("HT_DCPHASE", "cycle", {}, None, None, 1000),
    ("HT_PHASOR", "cycle", {}, None, None, 1000),
    ("HT_SINE", "cycle", {}, None, None, 1000),
    ("HT_TRENDMODE", "cycle", {}, None, None, 1000),
)

# TA-Lib inputs that are two series default to (high, low); these take (close, volume) instead.
TALIB_INPUT_OVERRIDES: dict[str, tuple[str, ...]] = {"CORREL": ("close", "volume")}

# Native indicators (implemented in ``native.py``): name -> (family, params, outputs, memory).
_NATIVE: dict[str, tuple[Family, dict[str, Any], tuple[str, ...], int]] = {
    "logret": ("price_transform", {}, ("real",), 0),
    "gap": ("price_transform", {}, ("real",), 0),
    "clv": ("price_transform", {}, ("real",), 0),
    "candle_shape": ("price_transform", {}, ("body", "upper_wick", "lower_wick"), 0),
    "drawdown": ("trend", {"timeperiod": 720}, ("real",), 0),
    "rv_close": ("volatility", {"timeperiod": 24}, ("real",), 0),
    "rv_parkinson": ("volatility", {"timeperiod": 24}, ("real",), 0),
    "rv_garman_klass": ("volatility", {"timeperiod": 24}, ("real",), 0),
    "rv_rogers_satchell": ("volatility", {"timeperiod": 24}, ("real",), 0),
    "rv_yang_zhang": ("volatility", {"timeperiod": 24}, ("real",), 0),
    "ulcer": ("volatility", {"timeperiod": 14}, ("real",), 0),
    "chop": ("volatility", {"timeperiod": 14}, ("real",), 0),
    "chandelier": ("volatility", {"timeperiod": 22, "mult": 3.0}, ("long", "short"), 400),
    "skew": ("statistic", {"timeperiod": 72}, ("real",), 0),
    "kurt": ("statistic", {"timeperiod": 72}, ("real",), 0),
    "autocorr": ("statistic", {"timeperiod": 72}, ("real",), 0),
    "linreg_r2": ("statistic", {"timeperiod": 14}, ("real",), 0),
    "zscore": ("statistic", {"timeperiod": 20}, ("real",), 0),
    "vwap": ("volume", {"timeperiod": 24}, ("real",), 0),
    "eom": ("volume", {"timeperiod": 14}, ("real",), 0),
    "amihud": ("volume", {"timeperiod": 24}, ("real",), 0),
    "kvo": (
        "volume",
        {"fastperiod": 34, "slowperiod": 55, "signalperiod": 13},
        ("kvo", "signal"),
        800,
    ),
    "kst": ("momentum", {}, ("kst", "signal"), 0),
    "fisher": ("momentum", {"timeperiod": 10}, ("real",), 300),
    "rvgi": ("momentum", {"timeperiod": 10}, ("rvgi", "signal"), 0),
    "crsi": ("momentum", {}, ("real",), 400),
}


# Native lookbacks that are not simply the largest period.
_NATIVE_LOOKBACK: dict[str, int] = {
    "ulcer": 2 * 14,
    "autocorr": 72 + 1,
    "rvgi": 10 + 6,
    "kst": 30 + 15 + 9,
    "crsi": 101,
    "kvo": 55 + 13,
    "eom": 14 + 1,
    "amihud": 24 + 1,
    "skew": 72 + 1,
    "kurt": 72 + 1,
    "rv_close": 24 + 1,
    "rv_yang_zhang": 24 + 1,
}


def _talib_indicators() -> list[Indicator]:
    from talib import abstract

    out: list[Indicator] = []
    for func, family, params, keep, transform, memory in _TALIB:
        fn = abstract.Function(func)  # type: ignore[attr-defined]
        if params:
            fn.parameters = params
        full = dict(fn.parameters)
        names = tuple(fn.info["output_names"])
        outputs = names if keep is None else keep
        name = func.lower()
        columns = tuple(name if len(names) == 1 else f"{name}_{o}" for o in outputs)
        if transform:
            columns = tuple(f"{c}_{transform}24" for c in columns)
        out.append(
            Indicator(
                name=name,
                family=family,
                backend="talib",
                func=func,
                params=full,
                outputs=outputs,
                columns=columns,
                lookback=int(fn.lookback),
                memory=memory,
                transform=transform,  # type: ignore[arg-type]
            )
        )
    return out


def _pattern_indicators() -> list[Indicator]:
    import talib

    out = []
    for func in talib.get_function_groups()["Pattern Recognition"]:
        name = func.lower()
        out.append(
            Indicator(
                name=name,
                family="pattern",
                backend="talib",
                func=func,
                outputs=("integer",),
                columns=(name,),
                lookback=int(getattr(talib.abstract, func).lookback),
            )
        )
    return out


def _native_indicators() -> list[Indicator]:
    out = []
    for name, (family, params, outputs, memory) in _NATIVE.items():
        periods = [int(v) for k, v in params.items() if "period" in k]
        lookback = _NATIVE_LOOKBACK.get(name, max([*periods, 1]))
        columns = tuple(name if len(outputs) == 1 else f"{name}_{o}" for o in outputs)
        out.append(
            Indicator(
                name=name,
                family=family,
                backend="native",
                func=name,
                params=dict(params),
                outputs=outputs,
                columns=columns,
                lookback=lookback,
                memory=memory,
            )
        )
    return out


def _build() -> dict[str, Indicator]:
    items = _talib_indicators() + _native_indicators() + _pattern_indicators()
    registry = {i.name: i for i in items}
    if len(registry) != len(items):  # pragma: no cover - a programming error
        raise RuntimeError("duplicate indicator names")
    return registry


REGISTRY: dict[str, Indicator] = _build()


def feature_names(indicators: list[str] | None = None) -> list[str]:
    """The output columns (one per distinct indicator output), in registry order."""
    return [c for ind in select(indicators) for c in ind.columns]


def select(indicators: list[str] | None = None) -> list[Indicator]:
    """The registry entries named in ``indicators`` (all when None); unknown names raise."""
    if indicators is None:
        return list(REGISTRY.values())
    unknown = [n for n in indicators if n not in REGISTRY]
    if unknown:
        raise KeyError(f"unknown indicators: {', '.join(unknown)}")
    return [REGISTRY[n] for n in indicators]


def warmup_bars(indicators: list[str] | None = None) -> int:
    """Bars of history needed before the first bar whose features are trusted."""
    return max((i.warmup for i in select(indicators)), default=0)


def count_by_family() -> dict[str, int]:
    """How many distinct outputs each family contributes."""
    return dict(Counter(i.family for i in REGISTRY.values() for _ in i.columns))
