"""``trading-pipeline venue fetch``: candles from Coinbase or Binance US into the history store."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from trading_pipeline.cli.instance import record_in_instance
from trading_pipeline.cli.options import DataDirOpt, HistoryDirOpt, settings_from
from trading_pipeline.settings import DEFAULT_INTERVAL

venue_app = typer.Typer(
    help="Other venues (Coinbase, Binance US) through ccxt.", no_args_is_help=True
)
APPS = [(venue_app, "venue")]


@venue_app.command("fetch")
def fetch(
    venue: Annotated[str, typer.Option(metavar="NAME", help="coinbase or binanceus")],
    symbol: Annotated[
        str,
        typer.Option(metavar="SYMBOL", help="BTC-USD, BTC/USD or BTCUSD (quote kept as given)"),
    ],
    interval: Annotated[
        str, typer.Option(metavar="INTERVAL", help="candle interval")
    ] = DEFAULT_INTERVAL,
    start: Annotated[
        str, typer.Option("--from", metavar="YYYY-MM-DD", help="first day, UTC (inclusive)")
    ] = "",
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="YYYY-MM-DD",
            help="last day, UTC (inclusive; whole months are fetched); default today",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="refetch months already complete")] = False,
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="venue API host (default TP_<VENUE>_URL, else the real venue)"
        ),
    ] = None,
) -> int:
    """Fetch whole months of candles through ccxt; complete months are kept, the rest resumed."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.errors import UserInputError
    from trading_pipeline.history.vision import parse_date
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

    settings = settings_from(data_dir, history_dir)
    url = base_url or settings.venue_url(request.venue)
    exchange = make_exchange(request.venue, base_url=url)

    def report(month: object, done: int, total: int) -> None:
        print(f"month {done}/{total} {getattr(month, 'period', '')}", file=sys.stderr, flush=True)

    try:
        summary = run_venue_fetch(
            request, exchange=exchange, layout=settings.layout.history, progress=report
        )
    except VenueFetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line)
    if summary.count("written"):

        def record(instance: Any) -> Any:
            # lazy: dagster takes seconds to import; only with an instance to record in
            from trading_pipeline.defs.history.runless import report_venue_fetch

            return report_venue_fetch(summary, instance=instance)

        record_in_instance(settings, record)
    return 0
