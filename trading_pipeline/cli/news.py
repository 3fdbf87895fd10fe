"""``news fetch``, ``news show`` and ``news compare``: news and social sentiment.

``news fetch`` reads the feeds and social exports (``--feed``/``--social``, else
``TP_NEWS_FEEDS``/``TP_SOCIAL_FILES``), scores them and merges every day found (or only
``--day``) into the store under the data layout's ``news`` folder; a source that fails is
counted and named, not fatal. ``news show`` prints the stored daily (or ``--hourly``)
aggregates. ``news compare`` trains the selector on discovery's outputs with and without the
stored news features and prints both held-out results beside the baselines.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_pipeline.cli.options import DataDirOpt, HistoryDirOpt, JsonOpt, settings_from
from trading_pipeline.errors import UserInputError

news_app = typer.Typer(
    help="News and social sentiment: fetch, show, compare.", no_args_is_help=True
)
APPS = [(news_app, "news")]

FeedOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--feed", metavar="URL|FILE", help="RSS/Atom feed (repeat; default TP_NEWS_FEEDS)"
    ),
]
SocialOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--social",
        metavar="URL|FILE",
        help="social export, JSON lines or CSV: timestamp, author, text (repeat; default "
        "TP_SOCIAL_FILES)",
    ),
]
DayOpt = Annotated[
    str | None, typer.Option("--day", metavar="YYYY-MM-DD", help="only this UTC day")
]


def _day(value: str | None, flag: str = "--day") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UserInputError(f"{flag} must be a date such as 2024-03-01, got {value!r}") from None


def _sources(given: list[str] | None, default: tuple[str, ...], flag: str) -> list[str]:
    # lazy: settings' own check of a source list, shared with TP_NEWS_FEEDS
    from trading_pipeline.settings import SettingsError, text_sources

    if not given:
        return list(default)
    try:
        entries = list(text_sources({flag: ",".join(given)}, flag))
    except SettingsError as exc:
        raise UserInputError(str(exc)) from None
    return entries


def _check_files(locations: list[str]) -> None:
    for loc in locations:
        if not loc.startswith(("http://", "https://")):
            path = Path(loc.removeprefix("file://")).expanduser()
            if not path.is_file():
                raise UserInputError(f"no such file: {path}")


@news_app.command("fetch")
def fetch(
    feed: FeedOpt = None,
    social: SocialOpt = None,
    day: DayOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read, score and store news and social posts (every day found, or --day)."""
    settings = settings_from(data_dir)
    feeds = _sources(feed, settings.news_feeds, "--feed")
    posts = _sources(social, settings.social_files, "--social")
    only = _day(day)
    if not feeds and not posts:
        raise UserInputError(
            "no sources: give --feed/--social or set TP_NEWS_FEEDS/TP_SOCIAL_FILES"
        )
    _check_files(feeds + posts)
    import httpx

    # lazy: httpx, feedparser and VADER load with this verb only
    from trading_pipeline.news.sources import collect
    from trading_pipeline.news.store import write_day

    with httpx.Client(timeout=20.0, follow_redirects=True) as client:
        items, counts = collect(feeds, posts, client=client)
    days = [only] if only else sorted({t.date() for t in items.get_column("published_at")})
    stored = []
    for d in days:
        merged, new = write_day(settings.layout, d, items)
        stored.append({"day": d.isoformat(), "items": merged.height, "new": new})
    if as_json:
        print(json.dumps({"counts": counts.as_dict(), "days": stored}, indent=1))
        return
    c = counts
    print(
        f"sources {c.sources} ({c.sources_failed} failed) · read {c.entries_read} · "
        f"malformed rows {c.malformed_rows} · duplicates {c.duplicates} · "
        f"no timestamp {c.missing_timestamp} · kept {c.kept} · non-English {c.non_english} · "
        f"scored {c.scored}"
    )
    for line in c.errors:
        print(f"  failed: {line}")
    for row in stored:
        print(f"  {row['day']}: {row['items']} items stored ({row['new']} new)")
    print(f"stored under {settings.layout.news_dir}")


@news_app.command("show")
def show(
    day: DayOpt = None,
    from_: Annotated[
        str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="first day (inclusive)")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="YYYY-MM-DD", help="last day (inclusive)")
    ] = None,
    coin: Annotated[
        str | None, typer.Option("--coin", metavar="TICKER", help="one coin (e.g. BTC), or ALL")
    ] = None,
    hourly: Annotated[bool, typer.Option("--hourly", help="per UTC hour, not per day")] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The stored news sentiment per day (or hour) and coin: counts, mean compound, shares."""
    # lazy: the store reads Parquet with polars
    from trading_pipeline.news.coins import COINS
    from trading_pipeline.news.store import read_table, stored_days

    layout = settings_from(data_dir).layout
    first, last = _day(from_, "--from"), _day(to, "--to")
    one = _day(day)
    if one is not None:
        first = last = one
    want = coin.strip().upper() if coin else None
    if want is not None and want != "ALL" and want not in COINS:
        raise UserInputError(f"unknown coin {coin!r}: one of ALL, {', '.join(COINS)}")
    days = [
        d
        for d in stored_days(layout)
        if (first is None or d >= first) and (last is None or d <= last)
    ]
    if not days:
        raise UserInputError(
            f"no news stored under {layout.news_dir} for that range: run news fetch"
        )
    frame = read_table(layout, "hourly" if hourly else "daily", days)
    assert frame is not None
    if want is not None:
        frame = frame.filter(frame["coin"] == want)
    period = "hour" if hourly else "day"
    rows: list[dict[str, Any]] = frame.to_dicts()
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
        return
    print(
        f"{period:<25} {'coin':<5} {'items':>6} {'scored':>6} {'compound':>9} {'pos':>5} {'neg':>5}"
    )
    for r in rows:
        print(
            f"{r[period]!s:<25} {r['coin']:<5} {r['items']:>6} {r['scored']:>6} "
            f"{r['compound_mean']:>+9.3f} {r['pos_share']:>5.2f} {r['neg_share']:>5.2f}"
        )


@news_app.command("compare")
def compare(
    holdout: Annotated[
        float, typer.Option("--holdout", metavar="FRACTION", help="held-out share of the rows")
    ] = 0.25,
    every: Annotated[str, typer.Option("--every", metavar="WINDOW", help="decision window")] = "1d",
    data_dir: DataDirOpt = None,
    history_dir: HistoryDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The selector with and without the stored news features, on the same held-out rows
    (nothing registered)."""
    if not 0.0 < holdout < 1.0:
        raise UserInputError("--holdout must be between 0 and 1")
    layout = settings_from(data_dir, history_dir).layout
    if not layout.top_strategies_path.is_file():
        raise UserInputError(
            f"no {layout.top_strategies_path}: run discovery (top_strategies) first"
        )
    # lazy: the selector (scikit-learn) loads with this verb only
    from trading_pipeline.bots.spec import current_fleet
    from trading_pipeline.discovery.catalog import StudyCatalog
    from trading_pipeline.news.store import read_items
    from trading_pipeline.selector.dataset import results_from_catalog
    from trading_pipeline.selector.sentiment_compare import compare_sentiment

    news = read_items(layout)
    if news is None:
        raise UserInputError(f"no news stored under {layout.news_dir}: run news fetch first")
    fleet = current_fleet().bots
    found = results_from_catalog(StudyCatalog(layout), fleet=fleet, holdout_fraction=holdout)
    result = compare_sentiment(
        found.results, found.bars, news, fleet=fleet, every=every, holdout_fraction=holdout
    )
    if as_json:
        print(json.dumps(result.to_json(), indent=1, default=str))
        return
    print(
        f"{result.rows} decision rows; held out {result.with_news.holdout_start} .. "
        f"{result.with_news.holdout_end} ({result.with_news.n_holdout} rows); "
        f"{result.news_items} scored items, {result.rows_with_news} rows with news"
    )
    print(result.markdown())
    print(f"with minus without, held-out net return: {result.delta_net_return:+.4f}")
