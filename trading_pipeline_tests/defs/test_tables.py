"""The shared metadata helpers: typed tables with rounded cells, rounded scalars, dates."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from trading_pipeline.defs.tables import price, sig, table, tidy, when
from trading_pipeline_tests.defs.readable import noise_free, problems


def test_numbers_are_rounded_for_reading() -> None:
    assert sig(0.053000000000000005) == 0.053
    assert sig(1.23456789) == 1.235 and sig(-0.000123456) == -0.0001235
    assert sig(math.nan) is None and sig(math.inf) is None
    assert price(43012.5678912) == 43012.568  # 8 significant digits, 3 decimals
    assert price(0.000012345678) == 0.00001235  # at most 8 decimals
    assert price(12345678.9) == 12345678.9  # at least 2 decimals
    assert price(0.0) == 0.0


def test_times_are_utc_text() -> None:
    assert when(datetime(2021, 2, 4, 17, 0, tzinfo=UTC)) == "2021-02-04 17:00"
    assert when(datetime(2021, 2, 4, tzinfo=UTC)) == "2021-02-04"
    assert when(datetime(2021, 2, 4, 1, 2, 3)) == "2021-02-04 01:02:03"


def test_a_frame_becomes_a_typed_table_without_noise() -> None:
    frame = pl.DataFrame(
        {
            "open_time": [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 1, tzinfo=UTC)],
            "close": [42283.580000000005, 42475.23],
            "sharpe": [0.1 + 0.2, math.nan],
            "trades": [3, 4],
            "robust": [True, False],
        }
    )
    value = table(frame, descriptions={"close": "close price"})
    assert isinstance(value, dg.TableMetadataValue)
    types = {c.name: c.type for c in value.schema.columns}
    assert types == {
        "open_time": "string",
        "close": "float",
        "sharpe": "float",
        "trades": "int",
        "robust": "bool",
    }
    described = {c.name: c.description for c in value.schema.columns}
    assert described["close"] == "close price" and described["sharpe"]  # the shared one
    first, second = (r.data for r in value.records)
    assert first == {
        "open_time": "2024-01-01",
        "close": 42283.58,
        "sharpe": 0.3,
        "trades": 3,
        "robust": True,
    }
    assert second["sharpe"] is None and second["open_time"] == "2024-01-01 01:00"
    assert problems({"t": value}) == []


def test_a_long_table_says_how_many_rows_it_leaves_out() -> None:
    value = table([{"n": i} for i in range(50)], max_rows=10)
    assert len(value.records) == 10
    assert value.schema.constraints.other == ["first 10 of 50 rows (the file holds them all)"]
    empty = table([], ["a", "b"])
    assert [c.name for c in empty.schema.columns] == ["a", "b"] and empty.records == []


def test_tidy_rounds_scalars_and_json_and_keeps_the_rest() -> None:
    raw = {
        "ret": 0.053000000000000005,
        "bad": math.nan,
        "n": 3,
        "ok": True,
        "params": dg.MetadataValue.json({"fast": 0.30000000000000004, "slow": [1.0000001234]}),
        "money": dg.MetadataValue.float(1012.35),
        "text": "x",
    }
    out = tidy(raw)
    assert out["ret"] == 0.053 and out["bad"] == "nan" and out["n"] == 3 and out["ok"] is True
    assert out["params"].data == {"fast": 0.3, "slow": [1.0]}
    assert out["money"] is raw["money"] and out["text"] == "x"
    assert all(noise_free(x) for x in (out["ret"], 0.3, 1.0))
    assert problems({"p": out["params"], "r": dg.MetadataValue.float(out["ret"])}) == []
    assert problems({"r": dg.MetadataValue.float(0.053000000000000005)}) == [
        "r: 0.053000000000000005 carries noise"
    ]


def test_markdown_is_a_chart_or_links_only() -> None:
    chart = dg.MetadataValue.md("![a](data:image/png;base64,iVBORw0KGgo=)")
    remote = dg.MetadataValue.md("![a](http://127.0.0.1:5000/get-artifact?path=x.png&run_uuid=1)")
    links = dg.MetadataValue.md("- [a](http://x) · [b](http://y)\n- [c](http://z)")
    md_table = dg.MetadataValue.md("| a |\n|---|\n| 1 |")
    assert problems({"c": chart, "r": remote, "l": links}) == []
    assert problems({"t": md_table}) == [
        "t: Markdown that is neither one chart nor a list of links"
    ]
