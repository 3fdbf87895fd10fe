"""The lookahead audit on a held-out-style set: every leaky family caught, every honest one clean.

Run with ``-s`` to see the caught/flagged table. The families live in ``leaky_families.py``; the
file and network leaks read a daily CSV written here and a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.regimes.synthetic import synthetic_bars
from trading_pipeline.strategies.lookahead import AuditReport, audit_family
from trading_pipeline_tests.strategies import leaky_families as lf

pytestmark = pytest.mark.slow  # ~50 families × (truncation points + shock scan): 30-100 s

SCRIPT = (("sideways", 900), ("bull", 900), ("bear_highvol", 900), ("sideways", 900))
OUTSIDE = {"leak_file_daily", "leak_file_swallowed", "leak_network_daily"}
ERRORS = {"leak_wrong_length"}
# The field each leak must be reported in (others: flags), and the parameter that must be named.
FIELD = {
    "leak_take_profit_meta": "meta.take_profit",
    "leak_stop_distance": "stop_distance",
    "leak_reversed_cummin": "stop_distance",
    "leak_meta_scalar": "meta.take_profit",
}
PARAMS = {"leak_param_value": ("confirm", {2, 3}), "leak_choice": ("mode", {"smooth"})}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(SCRIPT, seed=3)


@pytest.fixture(scope="module")
def outside(bars: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The daily file and the daily HTTP server the outside-input families read from."""
    daily = bars.group_by_dynamic("open_time", every="1d").agg(pl.col("close").last())
    path = Path(tmp_path_factory.mktemp("daily")) / "daily.csv"
    daily.write_csv(path)
    body = json.dumps(daily["close"].to_list()).encode()

    class Daily(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Daily)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lf.DailyFromFile.path = lf.DailyFromPolarsFile.path = str(path)
    lf.DailyFromNetwork.url = f"http://127.0.0.1:{server.server_address[1]}/daily"
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def reports(bars: pl.DataFrame, outside: None) -> dict[str, AuditReport]:
    out = {}
    for cls in (*lf.LEAKY, *lf.HONEST, lf.SILENT):
        out[cls.name] = audit_family(cls(), bars, data="synthetic", samples=1, seed=0)
    print(table(out))
    return out


def table(reports: dict[str, AuditReport]) -> str:
    leaky = {c.name for c in lf.LEAKY}
    lines = [f"{'family':28} {'set':6} {'verdict':13} {'kind':14} {'field':18} {'s':>5}  where"]
    for name, r in reports.items():
        f = r.findings[0] if r.findings else None
        where = ""
        if f is not None:
            where = f"bar {f.bar} cut {f.truncated_at} params {f.params}"
        lines.append(
            f"{name:28} {'leaky' if name in leaky else 'honest':6} {r.verdict:13} "
            f"{f.kind if f else '-':14} {f.field if f else '-':18} {r.seconds:5.2f}  {where}"
        )
    caught = sum(reports[c.name].verdict == "leaky" for c in lf.LEAKY)
    clean = sum(reports[c.name].verdict == "clean" for c in lf.HONEST)
    lines.append(
        f"caught {caught}/{len(lf.LEAKY)} leaky; clean {clean}/{len(lf.HONEST)} honest; "
        f"silent: {reports[lf.SILENT.name].verdict}; total {sum(r.seconds for r in reports.values()):.1f} s"
    )
    return "\n".join(lines)


@pytest.mark.parametrize("name", [c.name for c in lf.LEAKY])
def test_leaky_family_is_caught(name: str, reports: dict[str, AuditReport]) -> None:
    r = reports[name]
    assert r.verdict == "leaky", r.describe()
    f = r.findings[0]
    expected_kind = (
        "outside-input" if name in OUTSIDE else "error" if name in ERRORS else "lookahead"
    )
    assert f.kind == expected_kind, f.describe()
    if expected_kind == "lookahead":
        assert f.field == FIELD.get(name, "flags"), f.describe()
        assert f.truncated_at is not None
        assert f.bar is not None or f.field.startswith("meta.")
    if name in PARAMS:
        param, leaking = PARAMS[name]
        assert f.params[param] in leaking, f.describe()


@pytest.mark.parametrize("name", [c.name for c in lf.HONEST])
def test_honest_family_is_clean(name: str, reports: dict[str, AuditReport]) -> None:
    r = reports[name]
    assert r.verdict == "clean", r.describe()
    assert r.exercised >= 1 and r.points > 20


def test_silent_family_is_inconclusive_never_clean(reports: dict[str, AuditReport]) -> None:
    r = reports[lf.SILENT.name]
    assert r.verdict == "inconclusive"
    assert "nothing was proven" in r.describe()


def test_pairs_cover_the_issue(reports: dict[str, AuditReport]) -> None:
    assert len(lf.LEAKY) >= 22 and len(lf.HONEST) >= 22
    assert sum(reports[c.name].verdict == "leaky" for c in lf.LEAKY) == len(lf.LEAKY)
