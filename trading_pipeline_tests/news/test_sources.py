"""News sources against a local news server (RSS, Atom, a document that is not a feed, a feed
answering 503 first, social JSON lines and CSV) and from files: every problem counted, nothing
raised; coins matched; non-English kept but not scored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from trading_pipeline.news.coins import coin_of_series, coin_of_symbol, match_coins
from trading_pipeline.news.score import is_english
from trading_pipeline.news.sources import collect, parse_time
from trading_pipeline.retrying import RetryPolicy
from trading_pipeline_tests.fakes.news import (
    FakeNews,
    Post,
    csv_export,
    jsonl,
    sample_day,
    serve_news,
    serve_sample,
)

DAY = datetime(2024, 3, 5, tzinfo=UTC)


def _policy(waits: list[float]) -> RetryPolicy:
    return RetryPolicy(attempts=3, sleep=waits.append)


def test_the_sample_day_from_the_fake_server_is_counted_exactly() -> None:
    sample = sample_day(DAY)
    waits: list[float] = []
    with serve_news() as fake, httpx.Client(timeout=5) as client:
        feeds, social = serve_sample(fake, sample)
        items, counts = collect(feeds, social, client=client, policy=_policy(waits))
    print("news sample:", counts.as_dict())
    assert counts.sources == 6
    assert counts.sources_failed == sample.sources_failed
    assert counts.entries_read == sample.read
    assert counts.malformed_rows == sample.malformed_rows
    assert counts.duplicates == sample.duplicates
    assert counts.missing_timestamp == sample.missing_timestamp
    assert counts.kept == items.height == sample.kept
    assert counts.non_english == sample.non_english
    assert counts.scored == sample.scored
    assert counts.errors and "broken.xml: not an RSS or Atom feed" in counts.errors[0]
    # the flaky feed answered 503 twice, then its entries: three requests, two waits
    assert fake.requests.count("/news/flaky.xml") == 3 and len(waits) == 2
    assert items.filter(pl.col("uid").is_in(["f1", "f2"])).height == 2
    # every kept item is dated and on the day; the French one is kept, unscored
    assert items["published_at"].null_count() == 0
    assert items["published_at"].dt.date().unique().to_list() == [DAY.date()]
    french = items.filter(~pl.col("english"))
    assert french.height == 1 and french["compound"].null_count() == 1
    assert french["text"][0].startswith("Le bitcoin")
    # VADER's scores: a rally is positive, an outage with panic negative
    by_uid = {r["uid"]: r for r in items.iter_rows(named=True)}
    assert by_uid["r1"]["compound"] > 0.05 and by_uid["r3"]["compound"] < -0.05
    assert by_uid["r1"]["coins"] == ["BTC"] and by_uid["w2"]["coins"] == ["BTC", "ETH"]
    assert "<b>" not in by_uid["r1"]["text"]  # HTML stripped from the summary


def test_an_unreachable_source_and_a_server_error_are_counted() -> None:
    with serve_news() as fake, httpx.Client(timeout=5) as client:
        fake.route("/ok.xml", sample_day(DAY).rss)
        fake.faults["/down.xml"] = [500, 500, 500]
        fake.route("/down.xml", b"")
        items, counts = collect(
            [fake.url("/ok.xml"), fake.url("/down.xml"), fake.url("/missing.xml")],
            [],
            client=client,
            policy=_policy([]),
        )
    assert counts.sources == 3 and counts.sources_failed == 2
    assert any("gave up after 3 attempts" in e for e in counts.errors)
    assert any("404" in e for e in counts.errors)
    assert items.height == counts.kept > 0


def test_social_files_jsonl_and_csv_and_a_missing_file(tmp_path: Path) -> None:
    posts = [
        Post("Bitcoin looks great today", DAY + timedelta(hours=1), "a", "1"),
        Post("ETH is awful", DAY + timedelta(hours=2), "b", "2"),
        Post("undated SOL post", None, "c", "3"),
    ]
    (tmp_path / "x.jsonl").write_bytes(jsonl(posts, garbage=["nope"]))
    (tmp_path / "y.csv").write_bytes(csv_export(posts))
    with httpx.Client() as client:
        items, counts = collect(
            [],
            [str(tmp_path / "x.jsonl"), f"file://{tmp_path / 'y.csv'}", str(tmp_path / "no.csv")],
            client=client,
        )
    assert counts.sources_failed == 1 and "no.csv" in counts.errors[0]
    assert counts.entries_read == 4 + 3 and counts.malformed_rows == 1
    assert counts.missing_timestamp == 1  # the CSV's undated row repeats the JSONL's text
    assert counts.duplicates == 3 and counts.kept == items.height == 2
    assert items["kind"].unique().to_list() == ["social"]
    assert items.filter(pl.col("coins").list.contains("ETH"))["compound"][0] < 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1709600400, datetime(2024, 3, 5, 1, tzinfo=UTC)),
        ("1709600400000", datetime(2024, 3, 5, 1, tzinfo=UTC)),
        ("2024-03-05T01:00:00Z", datetime(2024, 3, 5, 1, tzinfo=UTC)),
        ("2024-03-05T02:00:00+01:00", datetime(2024, 3, 5, 1, tzinfo=UTC)),
        ("2024-03-05 01:00:00", datetime(2024, 3, 5, 1, tzinfo=UTC)),
        ("Tue, 05 Mar 2024 01:00:00 GMT", datetime(2024, 3, 5, 1, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (-5, None),
    ],
)
def test_publication_times(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_coins_and_language() -> None:
    assert match_coins("$BTC and Ethereum up; SOL too") == ["BTC", "ETH", "SOL"]
    assert match_coins("a link to the sol system") == []  # lower-case tickers are words
    assert match_coins("Binance exchange news") == []  # the exchange is not its coin
    assert coin_of_symbol("ETHUSDT") == "ETH" and coin_of_symbol("FOOUSDT") is None
    assert coin_of_series("spot-BNBUSDT-1h") == "BNB" and coin_of_series("bad") is None
    assert is_english("Bitcoin rallies as the market rebounds")
    assert not is_english("Le bitcoin est en baisse et les investisseurs sont inquiets")
    assert not is_english("El bitcoin sube y los inversores están contentos con la subida")
    assert not is_english("比特币价格大涨")
    assert not is_english("12345 !!!")


def test_a_garbage_feed_document_never_raises() -> None:
    with serve_news(FakeNews()) as fake, httpx.Client(timeout=5) as client:
        for i, body in enumerate([b"", b"\x00\xff\xfe", b"<rss><channel><item><title>x", b"{}"]):
            fake.route(f"/g{i}.xml", body)
        items, counts = collect(
            [fake.url(f"/g{i}.xml") for i in range(4)], [], client=client, policy=_policy([])
        )
    assert counts.sources == 4
    assert counts.sources_failed + counts.entries_read >= 3
    assert items.height == counts.kept
