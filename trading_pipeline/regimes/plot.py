"""A PNG of the close with coloured regime bands (matplotlib, Agg backend, no display)."""

from __future__ import annotations

import io

import polars as pl

COLOURS: dict[str, str] = {
    "bull": "#2ca02c",
    "bull_highvol": "#98df8a",
    "bear": "#d62728",
    "bear_highvol": "#ff9896",
    "sideways": "#7f7f7f",
    "sideways_highvol": "#c7c7c7",
    "unknown": "#ffffff",
}


def regime_chart_png(
    bars: pl.DataFrame, periods: pl.DataFrame, *, title: str = "", dpi: int = 80
) -> bytes:
    """The close (log scale) over coloured bands, one per period of ``segment``'s output."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(10, 3.6), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    times = bars.get_column("open_time").to_list()
    ax.plot(times, bars.get_column("close").to_list(), color="black", linewidth=0.8)
    if bars.height and bars.get_column("close").min() > 0:  # type: ignore[operator]
        ax.set_yscale("log")
    seen: set[str] = set()
    for p in periods.iter_rows(named=True):
        regime = p["regime"]
        ax.axvspan(p["start"], p["end"], color=COLOURS.get(regime, "#ffffff"), alpha=0.35, lw=0)
        seen.add(regime)
    handles = [Patch(color=COLOURS[r], alpha=0.6, label=r) for r in COLOURS if r in seen]
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=7, ncol=len(handles))
    ax.set_title(title, fontsize=9)
    ax.margins(x=0)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
