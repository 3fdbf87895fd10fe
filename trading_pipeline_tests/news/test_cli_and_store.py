"""``news fetch`` / ``news show`` against the local news server, the per-day store (merged,
atomic, under the data layout), and bad input: one ``error:`` line, exit 2, nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline.news.sources import collect
from trading_pipeline.news.store import read_day, read_items, stored_days, write_day
from trading_pipeline.settings import DataLayout
from trading_pipeline_tests.fakes.news import sample_day, serve_news, serve_sample

DAY = datetime(2024, 3, 5, tzinfo=UTC)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_fetch_then_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = sample_day(DAY)
    data = tmp_path / "data"
    with serve_news() as fake:
        feeds, social = serve_sample(fake, sample)
        fake.faults.clear()
        monkeypatch.setenv("TP_NEWS_FEEDS", ",".join(feeds))
        monkeypatch.setenv("TP_SOCIAL_FILES", ",".join(social))
        assert main(["news", "fetch", "--data-dir", str(data), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["counts"]["kept"] == sample.kept and out["counts"]["scored"] == sample.scored
        assert out["days"] == [{"day": "2024-03-05", "items": sample.kept, "new": sample.kept}]
        # a second fetch adds nothing new: the day's file is merged, not duplicated
        assert main(["news", "fetch", "--data-dir", str(data)]) == 0
        text = capsys.readouterr().out
        assert f"2024-03-05: {sample.kept} items stored (0 new)" in text
        assert "failed: " in text and "broken.xml" in text
    layout = DataLayout.under(data)
    assert stored_days(layout) == [DAY.date()]
    assert not [p for p in _files(layout.news_dir) if p.suffix == ".part"]
    assert main(["news", "show", "--data-dir", str(data), "--coin", "btc", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["coin"] == "BTC" and rows[0]["items"] == 6
    assert main(["news", "show", "--data-dir", str(data), "--hourly"]) == 0
    assert "2024-03-05 01:00:00" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["news", "fetch"],  # no sources at all
        ["news", "fetch", "--feed", "ftp://x/feed.xml"],
        ["news", "fetch", "--social", "/nonexistent/posts.jsonl"],
        ["news", "fetch", "--feed", "http://127.0.0.1:9/x", "--day", "5 March"],
        ["news", "show"],  # nothing stored
        ["news", "show", "--coin", "NOPE"],
        ["news", "show", "--from", "2024-13-01"],
        ["news", "compare"],  # no discovery
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TP_NEWS_FEEDS", raising=False)
    monkeypatch.delenv("TP_SOCIAL_FILES", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert _files(tmp_path) == []


def test_settings_reject_a_bad_source_scheme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_NEWS_FEEDS", "gopher://old/feed")
    assert main(["news", "fetch", "--data-dir", str(tmp_path)]) == 2
    assert "TP_NEWS_FEEDS" in capsys.readouterr().err


def test_the_store_merges_days_and_keeps_other_days(tmp_path: Path) -> None:
    layout = DataLayout.under(tmp_path)
    sample = sample_day(DAY)
    (tmp_path / "a.xml").write_bytes(sample.rss)
    (tmp_path / "b.xml").write_bytes(sample.atom)
    with httpx.Client() as client:
        first, _ = collect([str(tmp_path / "a.xml")], [], client=client)
        both, _ = collect([str(tmp_path / "a.xml"), str(tmp_path / "b.xml")], [], client=client)
    merged, new = write_day(layout, DAY.date(), first)
    assert new == first.height
    merged, new = write_day(layout, DAY.date(), both)
    assert merged.height == both.height and new == both.height - first.height
    shifted = both.with_columns(pl.col("published_at") + timedelta(days=1))
    write_day(layout, DAY.date() + timedelta(days=1), shifted)
    assert stored_days(layout) == [DAY.date(), DAY.date() + timedelta(days=1)]
    everything = read_items(layout)
    assert everything is not None and everything.height == 2 * both.height
    day = read_day(layout, DAY.date())
    assert day is not None and day["published_at"].dt.date().unique().to_list() == [DAY.date()]
    assert layout.news_path("hourly", DAY.date()).is_file()
    assert layout.news_path("daily", DAY.date()).is_file()
