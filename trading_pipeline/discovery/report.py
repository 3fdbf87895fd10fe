"""One experiment-tracking run per tuned study group, through the :class:`Tracker` port.

Logged once per study (never inside the trial loop): the settings and chosen parameters, the
out-of-sample metrics of the continuous account (``oos_*``) beside buy-and-hold's (``bh_*``)
and the flat-restart figure (``oos_*_flat_restart``, secondary), the deflated Sharpe ratio and its probability,
PBO, consistency, the data partitions with their checksums (from the history manifest, or
the data file's own sha256), the code version, the Optuna study names and the storage URL
with any password redacted. Artifacts: the out-of-sample equity curve against buy-and-hold
(PNG), the trials table (CSV), the data partitions (JSON) and the summary (JSON). The run's
description says what it is (family, series, folds, costs, out-of-sample only); the series'
bars are its dataset input (source: the Parquet folder or file, digest: over the partitions'
sha256); per-fold figures are one metric each with the fold index as step
(``fold_test_sharpe``, ``fold_train_objective``).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trading_pipeline.discovery.results import StudyResult
from trading_pipeline.discovery.storage import redact
from trading_pipeline.tracking import DatasetRef, Tracker, code_version

EXPERIMENT = "strategy-discovery"


@dataclass(frozen=True)
class DataProvenance:
    """Where the bars came from: partitions (or files) and their sha256."""

    source: str
    checksums: dict[str, str] = field(default_factory=dict)
    location: str = ""  # the Parquet folder or file the bars were read from

    def dataset(self, name: str, *, context: str = "walk_forward") -> DatasetRef:
        """The bars as a run's dataset input (a reference: folder/file, digest, checksums)."""
        return DatasetRef(
            name=name,
            source=self.location or self.source.split(":", 1)[-1],
            digest=self.digest[:16],
            context=context,
            profile={
                "partitions": len(self.checksums),
                "sha256": self.digest,
                "provenance": self.source,
            },
        )

    @property
    def digest(self) -> str:
        """One sha256 over every ``name:checksum`` line, sorted."""
        h = hashlib.sha256()
        for k in sorted(self.checksums):
            h.update(f"{k}:{self.checksums[k]}\n".encode())
        return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance_from_store(
    history_dir: str | Path, *, market: str, symbol: str, interval: str
) -> DataProvenance:
    """The series' partitions and checksums from the manifest; without a manifest entry for
    them, the sha256 of each Parquet file of the series."""
    from trading_pipeline.history.layout import HistoryLayout, Series

    layout = HistoryLayout(Path(history_dir))
    sums: dict[str, str] = {}
    if layout.manifest_path.exists():
        from trading_pipeline.history.manifest import Manifest

        for key, e in Manifest(layout.manifest_path).load().items():
            if (e.market, e.symbol, e.interval) == (market, symbol, interval):
                digest = e.parquet_sha256 or e.sha256
                if digest:
                    sums[key] = digest
    if not sums:
        root = layout.series_dir(Series(market, symbol, interval))
        for p in sorted(root.rglob("*.parquet")):
            sums[str(p.relative_to(layout.root))] = file_sha256(p)
    folder = layout.series_dir(Series(market, symbol, interval)).resolve()
    return DataProvenance(
        source=f"store:{Path(history_dir).resolve()}", checksums=sums, location=str(folder)
    )


def provenance_from_file(path: str | Path) -> DataProvenance:
    """The sha256 of a candle file (or of each Parquet file in a folder)."""
    p = Path(path)
    if p.is_dir():
        sums = {str(f.relative_to(p)): file_sha256(f) for f in sorted(p.rglob("*.parquet"))}
    else:
        sums = {p.name: file_sha256(p)}
    return DataProvenance(source=f"file:{p.resolve()}", checksums=sums, location=str(p.resolve()))


def equity_png(result: StudyResult, path: Path) -> Path:
    """Out-of-sample equity (growth of 1) against buy-and-hold, fold boundaries marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.open_time.to_list()
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    ax.plot(t, np.cumprod(1.0 + result.returns), label=f"{result.spec.family} (out of sample)")
    if result.flat_restart_returns is not None:
        ax.plot(
            t,
            np.cumprod(1.0 + result.flat_restart_returns),
            label="same, each fold restarted flat (secondary)",
            lw=0.8,
            ls="--",
            alpha=0.7,
        )
    ax.plot(t, np.cumprod(1.0 + result.bh_returns), label="buy and hold", alpha=0.8)
    first = result.folds[0].test[0]
    for f in result.folds[1:]:
        ax.axvline(t[f.test[0] - first], color="grey", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_ylabel("growth of 1 (log)")
    ax.set_title(
        f"{result.spec.study_group}: walk-forward out of sample, DSR p={result.dsr.probability:.2f}"
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _params(result: StudyResult, storage_url: str, prov: DataProvenance) -> dict[str, Any]:
    spec = result.spec
    out: dict[str, Any] = {
        "strategy": spec.family,
        "strategy_version": spec.family_version,
        "series": spec.series,
        "interval": spec.interval,
        "folds": spec.walk.folds,
        "anchored": spec.walk.anchored,
        "train_bars": spec.walk.train_bars,
        "embargo": spec.walk.embargo,
        "segments": spec.walk.segments,
        "fee": spec.costs.fee,
        "slippage_bps": spec.costs.slippage_bps,
        "fill": spec.costs.fill,
        "cash": spec.cash,
        "n_trials": result.n_trials,
        "study": spec.study_group,
        "storage": redact(storage_url),
        "data_source": prov.source,
        "data_partitions": len(prov.checksums),
        "data_sha256": prov.digest,
        "data_fingerprint": spec.data_fingerprint,
        "oos_start": str(result.open_time[0]),
        "oos_end": str(result.open_time[-1]),
        "oos_account": "continuous",  # oos_* metrics; oos_*_flat_restart: each fold from cash
    }
    out.update({f"best.{k}": v for k, v in result.best_params.items()})
    for f in result.folds:
        out[f"fold{f.index}.params"] = json.dumps(f.params, sort_keys=True)
    return out


def _metrics(result: StudyResult) -> dict[str, float]:
    m: dict[str, float] = {}
    for k, v in result.metrics.items():
        m[f"oos_{k}"] = float(v)
    for k, v in result.flat_restart_metrics.items():
        m[f"oos_{k}_flat_restart"] = float(v)
    for k, v in result.bh_metrics.items():
        m[f"bh_{k}"] = float(v)
    m["dsr_probability"] = result.dsr.probability
    m["dsr_sharpe_per_bar"] = result.dsr.sharpe
    m["dsr_benchmark_per_bar"] = result.dsr.benchmark
    m["consistency"] = result.consistency
    if result.pbo is not None:
        m["pbo"] = result.pbo.pbo
    return m


def _fold_metrics(result: StudyResult) -> dict[str, list[float]]:
    """Per-fold figures, one list per metric, in fold order (logged with step = fold index)."""
    folds = sorted(result.folds, key=lambda f: f.index)
    return {
        "fold_test_sharpe": [float(f.test_metrics["sharpe"]) for f in folds],
        "fold_test_return": [float(f.test_metrics.get("total_return", math.nan)) for f in folds],
        "fold_train_objective": [float(f.train_value) for f in folds],
    }


def description(result: StudyResult, provenance: DataProvenance) -> str:
    """The run's description (Markdown): what was tuned on what, how, at which costs, and that
    every reported figure is out of sample."""
    spec = result.spec
    walk = spec.walk
    m = result.metrics
    return "\n".join(
        [
            f"**{spec.family}** v{spec.family_version} tuned on **{spec.series}** "
            f"({spec.interval}), {result.n_trials} Optuna trials over {len(result.folds)} "
            f"walk-forward folds ({'anchored' if walk.anchored else 'rolling'}, "
            f"embargo {walk.embargo} bars).",
            "",
            f"Costs: fee {spec.costs.fee:g} per side, slippage {spec.costs.slippage_bps:g} bps, "
            f"fills at {spec.costs.fill}.",
            "",
            "Every `oos_*` metric is **out of sample**: each fold's best trial (scored on its "
            "train window only) trades the following test window, concatenated as one account "
            f"from {result.open_time[0]} to {result.open_time[-1]}. "
            f"Sharpe {m.get('sharpe', math.nan):.2f} vs buy-and-hold "
            f"{result.bh_metrics.get('sharpe', math.nan):.2f}; deflated Sharpe probability "
            f"{result.dsr.probability:.2f} for all trials tried. `fold_*` metrics have one step "
            "per fold. `oos_*_flat_restart` restarts each fold from cash (secondary).",
            "",
            f"Data: {len(provenance.checksums)} partitions, sha256 {provenance.digest[:16]}… "
            f"({provenance.source}).",
        ]
    )


def log_study(
    tracker: Tracker,
    result: StudyResult,
    *,
    storage_url: str,
    provenance: DataProvenance,
    extra_tags: Mapping[str, str] | None = None,
) -> str:
    """Log ``result`` as one finished run; return the run id."""
    tags = {
        "study": result.spec.study_group,
        "strategy": result.spec.family,
        "series": result.spec.series,
        "code_version": code_version(),
        "dsr_significant": str(result.dsr.significant()).lower(),
        **dict(extra_tags or {}),
    }
    run_id = tracker.start_run(
        result.spec.study_group, tags=tags, description=description(result, provenance)
    )
    try:
        tracker.log_params(run_id, _params(result, storage_url, provenance))
        tracker.log_metrics(run_id, _metrics(result))
        for key, values in _fold_metrics(result).items():
            tracker.log_metric_steps(run_id, key, values)
        tracker.log_dataset(run_id, provenance.dataset(f"{result.spec.series} bars"))
        with tempfile.TemporaryDirectory(prefix="tp-report-") as tmp:
            d = Path(tmp)
            tracker.log_artifact(run_id, equity_png(result, d / "oos_equity.png"))
            trials = d / "trials.csv"
            result.trials.write_csv(trials)
            tracker.log_artifact(run_id, trials)
            parts = d / "data_partitions.json"
            parts.write_text(json.dumps(provenance.checksums, indent=1, sort_keys=True))
            tracker.log_artifact(run_id, parts)
            summary = d / "summary.json"
            summary.write_text(json.dumps(result.summary(), indent=1, default=str))
            tracker.log_artifact(run_id, summary)
    except BaseException:
        tracker.end_run(run_id, status="FAILED")
        raise
    tracker.end_run(run_id)
    return run_id
