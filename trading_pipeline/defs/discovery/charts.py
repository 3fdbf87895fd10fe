"""The strategy × regime Sharpe heatmap as PNG bytes (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import math

import polars as pl

from trading_pipeline.discovery.matrix import ALL, pivot


def heatmap_png(matrix: pl.DataFrame, metric: str = "sharpe") -> bytes:
    """Rows ``series / strategy``, columns the regimes (``all`` first), cells ``metric``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    wide = pivot(matrix, metric)
    regimes = [c for c in wide.columns if c not in ("series", "strategy")]
    regimes = sorted(regimes, key=lambda r: (r != ALL, r))
    labels = [f"{s} / {t}" for s, t in zip(wide["series"], wide["strategy"], strict=True)]
    values = np.array(
        [[_num(v) for v in wide[r].to_list()] for r in regimes], dtype=float
    ).T.reshape(len(labels), len(regimes))
    finite = values[np.isfinite(values)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    fig, ax = plt.subplots(figsize=(1.2 * len(regimes) + 4, 0.35 * len(labels) + 1.5), dpi=100)
    im = ax.imshow(values, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(regimes)), regimes, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(regimes)):
            if math.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(f"out-of-sample {metric} by regime")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan
