"""No-change re-run of a 60-month fetch from a local mirror (target: 0 zip downloads, < 2 s).

Generates 60 monthly BTCUSDT-1h zips, serves them with ``trading-pipeline mirror``'s server,
fetches them once (the anchor), then times a re-run with nothing new and prints both, with
the number of zips the re-run downloaded and the ratio of the re-run to the first fetch.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from trading_pipeline.history.fetch import FetchRequest, run_fetch
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.mirror import running_mirror
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_range

MONTHS = 60
SERIES = Series("spot", "BTCUSDT", "1h")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        root = Path(tmp)
        months = month_range((2020, 1), MONTHS)
        t0 = time.perf_counter()
        make_vision_tree(root / "vision", SERIES, months=months)
        generated = time.perf_counter() - t0
        layout = HistoryLayout(root / "history")
        last = months[-1]
        request = FetchRequest(
            "spot", (SERIES.symbol,), SERIES.interval, date(2020, 1, 1), date(last[0], last[1], 28)
        )
        with running_mirror(root / "vision") as mirror:
            kw = {"layout": layout, "vision_url": mirror.url, "listing_url": mirror.url}
            t0 = time.perf_counter()
            first = run_fetch(request, **kw)  # type: ignore[arg-type]
            first_s = time.perf_counter() - t0
            mirror.faults.clear()
            t0 = time.perf_counter()
            again = run_fetch(request, **kw)  # type: ignore[arg-type]
            rerun_s = time.perf_counter() - t0
            zips = mirror.faults.count("*.zip")
            requests = len(mirror.faults.requests)
    print(f"generated {MONTHS} monthly zips in {generated:.2f} s")
    print(f"first fetch: {first.new} zips, {first.rows} rows, {first_s:.2f} s (anchor)")
    print(
        f"no-change re-run over {MONTHS} months: {rerun_s:.3f} s, zip downloads: {zips}, "
        f"HTTP requests: {requests}, ratio to first fetch: {rerun_s / first_s:.3f}"
    )
    ok = first.ok and again.ok and zips == 0 and rerun_s < 2.0
    print(f"target 0 zip downloads and < 2 s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
