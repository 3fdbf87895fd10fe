"""History verbs: ``fetch`` (Binance Vision), ``mirror build``/``mirror serve`` and
``import freqtrade``."""

from __future__ import annotations

import errno
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_pipeline.cli.instance import record_in_instance
from trading_pipeline.cli.options import DataDirOpt, HistoryDirOpt, check_writable, settings_from
from trading_pipeline.errors import EnvironmentFault, UserInputError
from trading_pipeline.settings import DEFAULT_INTERVAL, DEFAULT_START

verbs = typer.Typer()
mirror_app = typer.Typer(
    help="A local Binance Vision mirror (files + S3 listing).", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import candles from other tools into the history store.", no_args_is_help=True
)
APPS = [(verbs, None), (mirror_app, "mirror"), (import_app, "import")]


def http_url(url: str, flag: str) -> str:
    """``url`` if it is ``http(s)://host[…]``, else a one-line error naming ``flag``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise UserInputError(f"{flag} {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserInputError(f"{flag} must be an http(s)://host URL, got {url!r}")
    return url.rstrip("/")


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(s.strip() for v in values or [] for s in v.split(",") if s.strip())


class _Reporter:
    """A rich progress bar on a terminal, plain log lines otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()

    def __call__(self, event: Any) -> None:
        if self.bar is None:
            if event.stage != "build" or event.status != "none":
                print(
                    f"{event.stage} {event.done}/{event.total} {event.item} {event.status}",
                    file=sys.stderr,
                    flush=True,
                )
            return
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.bar.add_task(event.stage, total=event.total)
        self.bar.update(self.tasks[event.stage], completed=event.done, total=event.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@verbs.command("fetch")
def fetch(
    symbol: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol", metavar="SYMBOL", help="repeatable or comma-separated (default TP_UNIVERSE)"
        ),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option(
            metavar="INTERVAL",
            help=f"1s…1mo as Binance spells them (default TP_INTERVAL, else {DEFAULT_INTERVAL})",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="YYYY-MM-DD",
            help=f"first day, UTC, inclusive (default TP_START, else {DEFAULT_START})",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="YYYY-MM-DD", help="last day, UTC, inclusive; default yesterday"
        ),
    ] = None,
    fill_daily: Annotated[
        bool, typer.Option("--fill_daily", "--fill-daily", help="daily files where no monthly")
    ] = False,
    force: Annotated[bool, typer.Option(help="re-download and rebuild everything")] = False,
    market: Annotated[
        str | None, typer.Option(metavar="MARKET", help="spot, um or cm (default TP_MARKET)")
    ] = None,
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    base_url: Annotated[
        str | None, typer.Option(metavar="URL", help="Binance Vision file host (TP_VISION_URL)")
    ] = None,
    listing_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="S3 listing endpoint (TP_VISION_LISTING_URL)"),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="parallel downloads (TP_CONCURRENCY)")
    ] = None,
) -> int:
    """Fetch Binance Vision klines: verified zips → CSV → partitioned Parquet."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.history.fetch import FetchRequest, run_fetch
    from trading_pipeline.history.vision import parse_date

    settings = settings_from(data_dir, history_dir)
    symbols = _split(symbol)
    if symbol is not None and not symbols:
        raise UserInputError("--symbol is empty: name at least one symbol, e.g. BTCUSDT")
    vision_url = http_url(base_url or settings.vision_url, "--base-url (TP_VISION_URL)")
    listing = http_url(listing_url or settings.listing_url, "--listing-url (TP_VISION_LISTING_URL)")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    request = FetchRequest(
        market=market or settings.market,
        symbols=symbols or settings.universe,
        interval=interval or settings.interval,
        start=parse_date(start or settings.start, "--from"),
        end=parse_date(end, "--to") if end else yesterday,
        fill_daily=fill_daily,
        force=force,
    )
    check_writable(settings.layout.history.root, "history dir")
    reporter = _Reporter()
    try:
        summary = run_fetch(
            request,
            layout=settings.layout.history,
            vision_url=vision_url,
            listing_url=listing,
            concurrency=concurrency or settings.concurrency,
            progress=reporter,
        )
    finally:
        reporter.close()
    for line in summary.lines():
        print(line)
    return 0 if summary.ok else 1


@mirror_app.command("serve")
def mirror_serve(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="folder holding data/spot/…")],
    port: Annotated[int, typer.Option(min=0, max=65535, metavar="PORT", help="TCP port")] = 8765,
    host: Annotated[str, typer.Option(metavar="HOST", help="address to bind")] = "127.0.0.1",
    page_size: Annotated[
        int, typer.Option(min=1, metavar="N", help="listing entries per page")
    ] = 1000,
) -> None:
    """Serve DIR like data.binance.vision, with its S3 listing at the same base URL."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.history.mirror import serve

    if not directory.is_dir():
        raise UserInputError(f"mirror folder {directory} does not exist")
    try:
        serve(directory, host=host, port=port, page_size=page_size)
    except socket.gaierror as exc:
        raise UserInputError(f"--host {host!r}: {exc.strerror}") from exc
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        raise EnvironmentFault(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


@mirror_app.command("build")
def mirror_build(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="folder to write data/spot/… in")
    ],
    symbols: Annotated[
        str,
        typer.Option("--symbols", metavar="SYMBOLS", help="comma-separated, e.g. BTCUSDT,ETHUSDT"),
    ] = "BTCUSDT,ETHUSDT,BNBUSDT",
    start: Annotated[
        str, typer.Option("--from", metavar="YYYY-MM", help="first month")
    ] = "2021-01",
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="YYYY-MM[-DD]",
            help="last month or day, UTC, inclusive (default yesterday)",
        ),
    ] = None,
    interval: Annotated[str, typer.Option(metavar="INTERVAL", help="kline interval")] = "1h",
    source: Annotated[
        str,
        typer.Option(
            metavar="generated|DIR",
            help="seeded generated candles, or a history dir (its parquet/ store) to export",
        ),
    ] = "generated",
) -> None:
    """Write a Binance-Vision-shaped folder (monthly zips, dailies for the current month, and
    their .CHECKSUM files) for `mirror serve` to serve."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.history.mirror_build import GENERATED, build_mirror, make_plan

    plan = make_plan(_split([symbols]), interval=interval, start=start, end=end)
    if source != GENERATED and not Path(source).is_dir():
        raise UserInputError(f"--source must be 'generated' or a history folder, got {source!r}")
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"{directory} exists and is not a folder")
    check_writable(directory, "mirror dir")
    counts = build_mirror(directory, plan, source=source, echo=print)
    print(
        f"mirror {directory}: {sum(counts.values())} zips for {len(counts)} symbol(s), "
        f"{plan.first:%Y-%m} … {plan.last} {plan.interval} ({source})"
    )


@import_app.command("freqtrade")
def import_freqtrade(
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="freqtrade user_data/data[/<exchange>] folder"),
    ],
    exchange: Annotated[
        str, typer.Option(metavar="NAME", help="exchange sub-folder and manifest label")
    ] = "binance",
    market: Annotated[str, typer.Option(metavar="MARKET", help="spot, um or cm")] = "spot",
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
) -> None:
    """Import freqtrade .feather/.json candles, split per month, into the Parquet store."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.history.importer import import_freqtrade as run_import

    settings = settings_from(data_dir, history_dir)
    history = settings.layout.history
    summary = run_import(directory, layout=history, exchange=exchange, market=market)
    for f in summary.files:
        print(f.describe())
    for name, why in summary.skipped:
        print(f"skipped {name}: {why}")
    print(
        f"imported {len(summary.files)} file(s), {summary.rows} rows: "
        f"{summary.months_written} month(s) written, {summary.months_unchanged} unchanged "
        f"into {history.root}"
    )
    if summary.months_written:

        def report(instance: Any) -> Any:
            # lazy: dagster takes seconds to import; only with an instance to record in
            from trading_pipeline.defs.history.runless import report_import

            return report_import(summary, layout=history, instance=instance)

        record_in_instance(settings, report)
