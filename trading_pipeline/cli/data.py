"""``trading-pipeline list-data``: what the store holds per series (freqtrade's ``list-data``)."""

from __future__ import annotations

import json

import typer

from trading_pipeline.cli.options import (
    DataDirOpt,
    HistoryDirOpt,
    IntervalOpt,
    JsonOpt,
    SymbolOpt,
    settings_from,
)

verbs = typer.Typer()
APPS = [(verbs, None)]


def _day_hour(iso_text: str | None) -> str:
    return "-" if not iso_text else iso_text[:16].replace("T", " ")


def _holes(months: list[str]) -> str:
    if not months:
        return "0"
    shown = ", ".join(months[:3]) + (" …" if len(months) > 3 else "")
    return f"{len(months)} ({shown})"


@verbs.command("list-data")
def list_data(
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every series in the history store: first/last bar, months held and missing, gaps.

    Read from the store's manifest (nothing is scanned or changed). Missing months are holes
    between the first and the last month held; gaps are runs of absent bars inside months.
    """
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.history.inventory import inventory
    from trading_pipeline.history.layout import HistoryLayout
    from trading_pipeline.history.manifest import Manifest

    history = settings_from(data_dir, history_dir).history_dir
    entries = Manifest(HistoryLayout(history).manifest_path).load()
    wanted = {s.strip().upper() for s in (symbol or "").split(",") if s.strip()}
    rows = [
        s
        for s in inventory(entries)
        if (not wanted or s.symbol.upper() in wanted)
        and (interval is None or s.interval == interval)
    ]
    if as_json:
        print(json.dumps({"history_dir": str(history), "series": [r.to_json() for r in rows]}))
        return
    if not rows:
        print(f"no series in {history}" + (" match the filter" if wanted or interval else ""))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"history store {history}")
    for col in ("series", "first bar", "last bar", "months", "missing months", "rows", "gaps",
                "missing bars", "from"):  # fmt: skip
        table.add_column(col, justify="right" if col in {"months", "rows", "gaps"} else "left")
    for r in rows:
        table.add_row(
            r.key,
            _day_hour(r.first_bar),
            _day_hour(r.last_bar),
            str(len(r.months)),
            _holes(r.missing_months),
            f"{r.rows:,}",
            str(r.gaps),
            str(r.missing_bars),
            ", ".join(r.sources),
        )
    Console(width=160).print(table)
