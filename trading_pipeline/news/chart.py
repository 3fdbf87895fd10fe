"""One day of news sentiment as a PNG: items per UTC hour (bars) and the hour's mean VADER
compound (line), for every item (``ALL``)."""

from __future__ import annotations

import io
from datetime import date

import polars as pl

from trading_pipeline.news.aggregate import ALL


def day_chart_png(hourly: pl.DataFrame, day: date) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = hourly.filter(pl.col("coin") == ALL)
    hours = [h.hour for h in rows.get_column("hour").to_list()]
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    ax.bar(hours, rows.get_column("items").to_list(), color="#9db4d0", label="items")
    ax.bar(hours, rows.get_column("scored").to_list(), color="#4a78a8", width=0.5, label="scored")
    ax.set_xlim(-0.5, 23.5)
    ax.set_xlabel("UTC hour")
    ax.set_ylabel("items")
    ax2 = ax.twinx()
    ax2.plot(hours, rows.get_column("compound_mean").to_list(), "o-", color="#c0392b")
    ax2.axhline(0.0, color="#c0392b", lw=0.5, ls=":")
    ax2.set_ylim(-1.05, 1.05)
    ax2.set_ylabel("mean compound", color="#c0392b")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"news sentiment {day.isoformat()} (usable by bars opening after each item)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
