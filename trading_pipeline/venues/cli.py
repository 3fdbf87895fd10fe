"""``trading-pipeline venue fetch``: candles from Coinbase or Binance US into the history store."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

venue_app = typer.Typer(help="Other venues (Coinbase, Binance US) through ccxt.")


@venue_app.command("fetch")
def fetch(
    venue: Annotated[str, typer.Option(help="coinbase or binanceus")],
    symbol: Annotated[str, typer.Option(help="BTC-USD, BTC/USD or BTCUSD (quote kept as given)")],
    interval: Annotated[str, typer.Option(help="candle interval, e.g. 1h")] = "1h",
    start: Annotated[str, typer.Option("--from", help="first day, UTC (YYYY-MM-DD)")] = "",
    end: Annotated[str | None, typer.Option("--to", help="last day, UTC; default today")] = None,
    force: Annotated[bool, typer.Option(help="refetch months already complete")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="history goes to DATA_DIR/history")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="venue API host (default TP_<VENUE>_URL, else the real venue)"),
    ] = None,
) -> int:
    """Fetch whole months of candles through ccxt; complete months are kept, the rest resumed."""
    from trading_pipeline.errors import UserInputError
    from trading_pipeline.history.layout import HistoryLayout
    from trading_pipeline.history.vision import parse_date
    from trading_pipeline.settings import Settings
    from trading_pipeline.venues.ohlcv import VenueFetchError, VenueFetchRequest, validate_request

    if not start:
        raise UserInputError("--from is required (YYYY-MM-DD)")
    today = datetime.now(UTC).date()
    request = VenueFetchRequest(
        venue=venue.strip().lower(),
        symbol=symbol,
        interval=interval,
        start=parse_date(start, "--from"),
        end=parse_date(end, "--to") if end else today,
        force=force,
    )
    validate_request(request, today=today)  # before ccxt is even imported
    from trading_pipeline.venues.exchange import make_exchange
    from trading_pipeline.venues.ohlcv import run_venue_fetch

    settings = Settings.from_env()
    url = base_url or settings.venue_url(request.venue)
    exchange = make_exchange(request.venue, base_url=url)
    root = data_dir / "history" if data_dir else settings.history_dir

    def report(month: object, done: int, total: int) -> None:
        print(f"month {done}/{total} {getattr(month, 'period', '')}", file=sys.stderr, flush=True)

    try:
        summary = run_venue_fetch(
            request, exchange=exchange, layout=HistoryLayout(root), progress=report
        )
    except VenueFetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line)
    return 0


def register(app: typer.Typer) -> None:
    """Add ``venue fetch`` to the top-level app."""
    app.add_typer(venue_app, name="venue")
