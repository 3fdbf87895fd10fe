"""``trading-pipeline import …``: bring candles from other tools into the history store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import_app = typer.Typer(
    name="import",
    help="Import candles from other tools into the history store.",
    no_args_is_help=True,
)


@import_app.command("freqtrade")
def freqtrade(
    directory: Annotated[Path, typer.Argument(help="freqtrade user_data/data[/<exchange>] folder")],
    exchange: Annotated[
        str, typer.Option(help="exchange sub-folder and manifest label")
    ] = "binance",
    market: Annotated[str, typer.Option(help="spot, um or cm")] = "spot",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="data folder (default TP_DATA_DIR)")
    ] = None,
) -> None:
    """Import freqtrade .feather/.json candles, split per month, into the Parquet store."""
    from trading_pipeline.history.importer import import_freqtrade
    from trading_pipeline.history.layout import HistoryLayout
    from trading_pipeline.settings import Settings

    settings = Settings.from_env()
    if data_dir is not None:
        settings = settings.with_overrides(data_dir=data_dir, history_dir_override=None)
        history = data_dir / "history"
    else:
        history = settings.history_dir
    summary = import_freqtrade(
        directory, layout=HistoryLayout(history), exchange=exchange, market=market
    )
    for f in summary.files:
        print(f.describe())
    for name, why in summary.skipped:
        print(f"skipped {name}: {why}")
    print(
        f"imported {len(summary.files)} file(s), {summary.rows} rows: "
        f"{summary.months_written} month(s) written, {summary.months_unchanged} unchanged "
        f"into {history}"
    )


def register(app: typer.Typer) -> None:
    """Add the import verbs to the top-level app."""
    app.add_typer(import_app, name="import")
