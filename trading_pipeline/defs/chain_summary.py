"""The main job's closing summary, read back from what the runs wrote: the Parquet store, the
instance's materializations (study results, the selector, the replay) and the bots' assignments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from trading_pipeline.defs.chain import Chain
from trading_pipeline.defs.discovery.partitions import family_series_key
from trading_pipeline.history.layout import Series


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = ["  " + "  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)).rstrip()]
    out.append("  " + "  ".join("-" * w for w in widths))
    for row in cells[1:]:
        out.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _pct(value: Any) -> str:
    return f"{value:+.1%}" if isinstance(value, int | float) else "-"


def _days(span: Any) -> str:
    """``2026-10-26 00:00:00+00:00 .. 2026-12-02 …`` → ``2026-10-26 … 2026-12-02``."""
    parts = [p.strip()[:10] for p in str(span or "").split("..")]
    return " … ".join(p for p in parts if p) or "-"


def latest_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey | None, partition: str | None = None
) -> dict[str, Any]:
    """The metadata values of the asset's (partition's) latest materialization; {} when none."""
    if key is None:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[partition] if partition is not None else None
        ),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def series_rows(chain: Chain) -> list[list[Any]]:
    rows = []
    for key in chain.report.series:
        s = Series.parse(key)
        root = chain.lake.layout.history.parquet_path(s, 2000, 1).parent.parent
        files = sorted(root.parent.glob("year=*/month=*/data.parquet"))
        if not files:
            rows.append([key, 0, "-", "-", 0])
            continue
        frame = (
            pl.scan_parquet([str(f) for f in files])
            .select(
                pl.len().alias("bars"),
                pl.col("open_time").min().alias("first"),
                pl.col("open_time").max().alias("last"),
            )
            .collect()
        )
        first, last = frame["first"][0], frame["last"][0]
        rows.append([key, len(files), f"{first:%Y-%m}", f"{last:%Y-%m-%d %H:%M}", frame["bars"][0]])
    return rows


def study_rows(chain: Chain) -> list[list[Any]]:
    rows: list[list[Any]] = []
    key = chain.key("strategy_results")
    for series in chain.report.series:
        for family in chain.budget.families:
            meta = latest_metadata(chain.instance, key, str(family_series_key(family, series)))
            if not meta:
                rows.append([family, series, "-", "-", "-", "-", "-", "not materialized"])
                continue
            beat = (meta.get("oos_return") or 0.0) > (meta.get("bh_return") or 0.0)
            rows.append(
                [
                    family,
                    series,
                    _pct(meta.get("oos_return")),
                    meta.get("oos_sharpe"),
                    _pct(meta.get("bh_return")),
                    meta.get("bh_sharpe"),
                    meta.get("oos_trades"),
                    "beats B&H" if beat else "below B&H",
                ]
            )
    return rows


def champion_lines(chain: Chain) -> list[str]:
    meta = latest_metadata(chain.instance, chain.key("selector_model"))
    if not meta:
        return ["  no selector model was materialized"]
    from trading_pipeline.defs.bots.resources import BotsRuntime  # lazy: mlflow for the alias

    champion = BotsRuntime.champion_version(chain.lake.layout)
    beats = meta.get("beats_baselines")
    lines = [
        f"  strategy-selector v{meta.get('model_version')} ({meta.get('config')}): held-out net "
        f"return {_pct(meta.get('heldout_net_return'))} over {_days(meta.get('holdout'))}; "
        f"{'beat' if beats else 'did NOT beat'} its baselines"
        + ("" if beats else f" (best baseline: {meta.get('best_baseline') or '-'})"),
        f"  gate: {'promoted' if meta.get('promoted') else 'not promoted'} — {meta.get('gate_reason')}",
    ]
    if meta.get("policy_version") is not None:
        lines.append(
            f"  baseline policy v{meta.get('policy_version')}: "
            f"{'promoted' if meta.get('policy_promoted') else 'not promoted'} — "
            f"{meta.get('policy_reason')}"
        )
    lines.append(f"  champion now: {'v' + str(champion) if champion is not None else 'none'}")
    return lines


def bot_rows(chain: Chain) -> list[list[Any]]:
    from trading_pipeline.defs.bots.resources import BotsRuntime  # lazy: the bots' stack

    fleet = BotsRuntime.store(chain.lake.layout).all_current()
    rows = []
    for bot, a in sorted(fleet.items()):
        params = json.dumps(dict(a.params), sort_keys=True, default=str)
        rows.append(
            [
                bot,
                a.family,
                _short(",".join(a.symbols) or "-", 32),
                a.interval,
                f"{a.capital_fraction:.0%}",
                f"v{a.version}",
                _short(params, 60),
            ]
        )
    return rows


def replay_lines(chain: Chain) -> list[str]:
    meta = latest_metadata(chain.instance, chain.key("paper_replay_report"))
    if not meta:
        return ["  no replay was materialized"]
    report = Path(str(meta.get("report", "")))
    lines = [
        f"  {chain.report.replay[0]} … {chain.report.replay[1]}: " if chain.report.replay else "  ",
    ]
    lines[0] += (
        f"capital {meta.get('capital', 0):.2f} → {meta.get('final', 0):.2f}, "
        f"PnL {meta.get('pnl', 0):+.2f}"
    )
    if report.is_file():
        data: Mapping[str, Any] = json.loads(report.read_text())
        rows = [
            [
                name,
                b.get("family"),
                f"{b.get('pnl', 0):+.2f}",
                _pct(b.get("return")),
                _pct(b.get("buy_and_hold_return")),
                len(b.get("fills", [])),
            ]
            for name, b in sorted(data.get("bots", {}).items())
        ]
        lines += _table(["bot", "strategy", "PnL", "return", "buy & hold", "fills"], rows)
    return lines


def summary_lines(chain: Chain) -> list[str]:
    """The closing summary, one section per stage family."""
    out = ["", "summary"]
    r = chain.report
    out.append(f"series ({r.first_month} … {r.last_month} requested)")
    out += _table(["series", "months", "first", "last bar", "bars"], series_rows(chain))
    if chain.key("strategy_results") is not None and "discovery" in r.run_ids:
        out.append("studies (walk-forward, out of sample only, net of costs)")
        out += _table(
            [
                "family",
                "series",
                "OOS return",
                "OOS sharpe",
                "B&H return",
                "B&H sharpe",
                "trades",
                "vs B&H",
            ],
            study_rows(chain),
        )
    if "selector" in r.run_ids:
        out.append("selector")
        out += champion_lines(chain)
    if "deploy" in r.run_ids:
        out.append("bot assignments")
        out += _table(
            ["bot", "family", "symbols", "interval", "capital", "version", "params"],
            bot_rows(chain),
        )
    if "replay" in r.run_ids:
        out.append("paper replay of the last month")
        out += replay_lines(chain)
    if r.failures:
        out.append("failed")
        out += [f"  {f}" for f in r.failures]
    total = sum(t.seconds for t in r.times)
    cpu = sum(t.cpu for t in r.times)
    out.append(
        "stages: "
        + ", ".join(f"{t.stage} {t.seconds:.1f} s (cpu {t.cpu:.1f})" for t in r.times)
        + f"; total {total:.1f} s (cpu {cpu:.1f})"
    )
    return out
