"""Command-line verbs of the history package: ``fetch`` and ``mirror serve``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

mirror_app = typer.Typer(help="A local Binance Vision mirror (files + S3 listing).")


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


def fetch(
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="repeatable or comma-separated")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="1s…1mo as Binance spells them")] = None,
    start: Annotated[str | None, typer.Option("--from", help="first day, UTC (YYYY-MM-DD)")] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="last day, UTC; default yesterday")
    ] = None,
    fill_daily: Annotated[
        bool, typer.Option("--fill_daily", "--fill-daily", help="daily files where no monthly")
    ] = False,
    force: Annotated[bool, typer.Option(help="re-download and rebuild everything")] = False,
    market: Annotated[str | None, typer.Option(help="spot, um or cm")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="history goes to DATA_DIR/history")] = None,
    base_url: Annotated[str | None, typer.Option(help="Binance Vision file host")] = None,
    listing_url: Annotated[str | None, typer.Option(help="S3 listing endpoint")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="parallel downloads")] = None,
) -> int:
    """Fetch Binance Vision klines: verified zips → CSV → partitioned Parquet."""
    from trading_pipeline.history.fetch import FetchRequest, run_fetch
    from trading_pipeline.history.layout import HistoryLayout
    from trading_pipeline.history.vision import parse_date
    from trading_pipeline.settings import Settings

    settings = Settings.from_env()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    request = FetchRequest(
        market=market or settings.market,
        symbols=_split(symbol) or settings.universe,
        interval=interval or settings.interval,
        start=parse_date(start or settings.start, "--from"),
        end=parse_date(end, "--to") if end else yesterday,
        fill_daily=fill_daily,
        force=force,
    )
    root = data_dir / "history" if data_dir else settings.history_dir
    reporter = _Reporter()
    try:
        summary = run_fetch(
            request,
            layout=HistoryLayout(root),
            vision_url=base_url or settings.vision_url,
            listing_url=listing_url or settings.listing_url,
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
    directory: Annotated[Path, typer.Argument(help="folder holding data/spot/…")],
    port: Annotated[int, typer.Option(help="TCP port")] = 8765,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    page_size: Annotated[int, typer.Option(min=1, help="listing entries per page")] = 1000,
) -> None:
    """Serve DIR like data.binance.vision, with its S3 listing at the same base URL."""
    from trading_pipeline.errors import UserInputError
    from trading_pipeline.history.mirror import serve

    if not directory.is_dir():
        raise UserInputError(f"mirror folder {directory} does not exist")
    serve(directory, host=host, port=port, page_size=page_size)


def register(app: typer.Typer) -> None:
    """Add this package's verbs to the top-level app."""
    app.command("fetch")(fetch)
    app.add_typer(mirror_app, name="mirror")
