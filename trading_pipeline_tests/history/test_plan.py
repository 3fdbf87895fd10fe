"""Planning: monthly where listed, dailies to fill, supersession, change detection."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from trading_pipeline.history.layout import HistoryLayout
from trading_pipeline.history.listing import ListedObject
from trading_pipeline.history.manifest import ManifestEntry
from trading_pipeline.history.plan import days_of_month, months_between, needs_fetch, plan_series
from trading_pipeline.history.vision import daily_key, monthly_key

from .conftest import SPOT_1H

URL = "http://vision.test"


def _listed(*keys: str) -> dict[str, ListedObject]:
    return {k: ListedObject(k, 100, "e1", "2026-01-01T00:00:00.000Z") for k in keys}


def test_months_and_days() -> None:
    assert list(months_between(date(2023, 11, 15), date(2024, 2, 1))) == [
        (2023, 11), (2023, 12), (2024, 1), (2024, 2),
    ]  # fmt: skip
    assert list(months_between(date(2024, 1, 31), date(2024, 1, 31))) == [(2024, 1)]
    days = list(days_of_month(2024, 2, date(2024, 2, 27), date(2024, 3, 5)))
    assert days == [date(2024, 2, 27), date(2024, 2, 28), date(2024, 2, 29)]


def test_monthly_where_listed_dailies_up_to_yesterday(tmp_path: Path) -> None:
    listed = _listed(
        monthly_key(SPOT_1H, 2024, 1),
        *(daily_key(SPOT_1H, date(2024, 2, d)) for d in range(1, 29)),
        daily_key(SPOT_1H, date(2024, 1, 5)),  # a daily beside a monthly: not used
    )
    plans = plan_series(
        SPOT_1H, date(2024, 1, 10), date(2024, 3, 31), listed=listed, fill_daily=True,
        today=date(2024, 2, 20), entries={}, layout=HistoryLayout(tmp_path), vision_url=URL,
    )  # fmt: skip
    jan, feb, mar = plans
    assert jan.source == "monthly" and [t.key for t in jan.files] == [monthly_key(SPOT_1H, 2024, 1)]
    assert feb.source == "daily"
    assert [t.file.period.day for t in feb.files] == list(range(1, 20))  # up to yesterday
    assert all(t.fetch for t in feb.files) and feb.files[0].url.startswith(URL + "/data/spot/")
    assert mar.source == "none" and not mar.files and mar.unchanged
    without = plan_series(
        SPOT_1H, date(2024, 1, 10), date(2024, 3, 31), listed=listed, fill_daily=False,
        today=date(2024, 2, 20), entries={}, layout=HistoryLayout(tmp_path), vision_url=URL,
    )  # fmt: skip
    assert [p.source for p in without] == ["monthly", "none", "none"]


def test_monthly_supersedes_recorded_dailies(tmp_path: Path) -> None:
    layout = HistoryLayout(tmp_path)
    stale = daily_key(SPOT_1H, date(2024, 1, 3))
    on_disk = layout.raw_path(daily_key(SPOT_1H, date(2024, 1, 4)))
    on_disk.parent.mkdir(parents=True)
    on_disk.write_bytes(b"zip")
    entries = {stale: ManifestEntry(key=stale)}
    (plan,) = plan_series(
        SPOT_1H, date(2024, 1, 1), date(2024, 1, 31), listed=_listed(monthly_key(SPOT_1H, 2024, 1)),
        fill_daily=True, today=date(2024, 3, 1), entries=entries, layout=layout, vision_url=URL,
    )  # fmt: skip
    assert plan.source == "monthly"
    assert plan.superseded == [stale, daily_key(SPOT_1H, date(2024, 1, 4))]
    assert not plan.unchanged


def test_needs_fetch_on_any_listing_change(tmp_path: Path) -> None:
    local = tmp_path / "x.zip"
    local.write_bytes(b"x" * 100)
    listed = ListedObject("k", 100, "e1", "2026-01-01T00:00:00.000Z")
    same = ManifestEntry(key="k", size=100, etag="e1", last_modified="2026-01-01T00:00:00.000Z")
    assert needs_fetch(listed, same, local)  # no .CHECKSUM sidecar beside it
    sidecar = tmp_path / "x.zip.CHECKSUM"
    sidecar.write_text("0" * 64 + "  x.zip")
    assert not needs_fetch(listed, same, local)
    assert needs_fetch(listed, same, local, force=True)
    assert needs_fetch(listed, None, local)
    assert needs_fetch(ListedObject("k", 100, "e2", listed.last_modified), same, local)
    assert needs_fetch(ListedObject("k", 101, "e1", listed.last_modified), same, local)
    assert needs_fetch(ListedObject("k", 100, "e1", "2026-02-01T00:00:00.000Z"), same, local)
    local.write_bytes(b"short")
    assert needs_fetch(listed, same, local)
    local.unlink()
    assert needs_fetch(listed, same, local)
