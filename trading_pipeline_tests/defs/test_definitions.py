"""The code location loads whole: a snapshot of every asset, check, job, schedule and sensor,
exactly one ``@dg.definitions`` place besides the entry point, and resources from the env."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pytest

from trading_pipeline.definitions import defs
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake

PACKAGE = Path(__file__).resolve().parents[2] / "trading_pipeline"
# the only modules allowed a @dg.definitions function (a module that has one contributes only
# what it returns to load_from_defs_folder, so assets beside it would silently vanish)
DEFINITIONS_MODULES = {"definitions.py", "defs/resources.py"}

ASSETS = [
    "bot_assignments",
    "fear_greed",
    "features",
    "history/kline_csv",
    "history/klines",
    "history/raw_zips",
    "market_correlation",
    "news_sentiment",
    "paper_replay_report",
    "performance_matrix",
    "portfolio_results",
    "regime_periods",
    "selector_model",
    "selector_training_set",
    "strategy_results",
    "top_strategies",
    "venues/arbitrage_study",
    "venues/venue_basis",
    "venues/venue_candles",
]
CHECKS = [
    "history/klines:bars_on_interval_grid",
    "history/klines:no_duplicate_bars",
    "history/klines:no_gaps",
    "history/klines:ohlc_consistent",
    "selector_model:promotion_gate",
]
JOBS = ["deploy_assignments", "history_job", "venue_candles_job"]
SCHEDULES = ["history_daily_schedule", "history_monthly_schedule", "venue_candles_daily_schedule"]
SENSORS = [
    "champion_change_sensor",
    "fleet_risk_sensor",
    "history_series",
    "late_monthly_files",
    "selector_decision_sensor",
]
RESOURCES = [
    "bots_runtime",
    "fear_greed_source",
    "history_source",
    "lake",
    "news_source",
    "parquet_io_manager",
    "selector_runtime",
    "venues",
]

pytestmark = (
    pytest.mark.slow
)  # loads the whole Dagster code location (imports dagster, mlflow, ccxt, …)


@pytest.fixture(scope="module")
def location() -> dg.Definitions:
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    return loaded


def snapshot(location: dg.Definitions) -> dict[str, list[str]]:
    graph = location.resolve_asset_graph()
    return {
        "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "checks": sorted(
            f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys
        ),
        "jobs": sorted({j.name for j in location.jobs or []}),
        "schedules": sorted({s.name for s in location.schedules or []}),
        "sensors": sorted({s.name for s in location.sensors or []}),
        "resources": sorted(location.resources or {}),
    }


def test_the_location_loads_exactly_this(location: dg.Definitions) -> None:
    assert snapshot(location) == {
        "assets": ASSETS,
        "checks": CHECKS,
        "jobs": JOBS,
        "schedules": SCHEDULES,
        "sensors": SENSORS,
        "resources": RESOURCES,
    }


def test_every_job_schedule_and_sensor_resolves(location: dg.Definitions) -> None:
    for name in JOBS:
        assert location.resolve_job_def(name).name == name
    assert location.resolve_implicit_global_asset_job_def() is not None
    for name in SCHEDULES:
        assert location.resolve_schedule_def(name).job_name in JOBS
    for name in SENSORS:
        location.resolve_sensor_def(name)
    assert location.resolve_schedule_def("venue_candles_daily_schedule").job_name == (
        "venue_candles_job"
    )


def definitions_modules(root: Path) -> list[str]:
    """Modules under ``root`` (relative paths) with a function decorated ``definitions``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                name = (
                    target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                )
                if name == "definitions":
                    found.append(path.relative_to(root).as_posix())
    return found


def test_only_defs_resources_registers_definitions() -> None:
    assert sorted(definitions_modules(PACKAGE)) == sorted(DEFINITIONS_MODULES)


@pytest.mark.parametrize(
    "source",
    [
        "import dagster as dg\n\n@dg.definitions\ndef defs():\n    return dg.Definitions()\n",
        "from dagster import definitions\n\n@definitions\ndef defs():\n    return None\n",
    ],
)
def test_a_planted_definitions_function_is_found(tmp_path: Path, source: str) -> None:
    (tmp_path / "defs" / "venues").mkdir(parents=True)
    (tmp_path / "defs" / "venues" / "assets.py").write_text(source)
    (tmp_path / "defs" / "resources.py").write_text(
        "import dagster as dg\n\n@dg.definitions\ndef resources():\n    return dg.Definitions()\n"
    )
    assert definitions_modules(tmp_path) == ["defs/resources.py", "defs/venues/assets.py"]


def test_history_assets_are_grouped_checked_and_backfill_in_one_run(
    location: dg.Definitions,
) -> None:
    graph = location.resolve_asset_graph()
    keys = [dg.AssetKey(["history", n]) for n in ("raw_zips", "kline_csv", "klines")]
    for key in keys:
        node = graph.get(key)
        assert node.group_name == "market_data"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert isinstance(node.partitions_def, dg.MultiPartitionsDefinition)
    checks = {k.name: k for k in graph.asset_check_keys if k.asset_key == keys[-1]}
    assert set(checks) == {
        "no_duplicate_bars",
        "ohlc_consistent",
        "bars_on_interval_grid",
        "no_gaps",
    }
    blocking = {n for n, k in checks.items() if graph.get_check_spec(k).blocking}
    assert blocking == {"no_duplicate_bars", "ohlc_consistent", "bars_on_interval_grid"}


def test_resources_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TP_VISION_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("TP_UNIVERSE", "SOLUSDT")
    monkeypatch.setenv("TP_DATA_DIR", "/srv/trading-bots")
    monkeypatch.setenv("TP_HISTORY_DIR", "/srv/trading-bots/history-elsewhere")
    monkeypatch.delenv("TP_BOTS_DIR", raising=False)
    resources = defs().resources
    source, lake = resources["history_source"], resources["lake"]
    assert isinstance(source, HistorySource) and isinstance(lake, DataLake)
    assert source.vision_url == "http://127.0.0.1:9"
    # TP_FLEET_SERIES unset = on: the universe first, then every bot's series of the fleet
    assert source.fleet_series is True
    assert (
        source.series_keys()[0] == "spot-SOLUSDT-1h" and "spot-SOLUSDT-5m" in source.series_keys()
    )
    monkeypatch.setenv("TP_FLEET_SERIES", "off")
    assert defs().resources["history_source"].series_keys() == ["spot-SOLUSDT-1h"]
    assert lake.layout.history_dir == Path("/srv/trading-bots/history-elsewhere")
    assert lake.layout.bots_dir == Path("/srv/trading-bots/bots")
    io = resources["parquet_io_manager"]
    assert io.base_dir == "/srv/trading-bots/tables"
    monkeypatch.setenv("TP_NEWS_FEEDS", "http://127.0.0.1:9/rss.xml, /srv/feeds/atom.xml")
    monkeypatch.setenv("TP_SOCIAL_FILES", "/srv/posts.jsonl")
    news = defs().resources["news_source"]
    assert news.feeds == ["http://127.0.0.1:9/rss.xml", "/srv/feeds/atom.xml"]
    assert news.social_files == ["/srv/posts.jsonl"]


def lineage_islands(location: dg.Definitions) -> list[list[str]]:
    """The asset graph's weakly connected components (each a sorted list of asset keys)."""
    graph = location.resolve_asset_graph()
    keys = list(graph.get_all_asset_keys())
    parent = {k: k for k in keys}

    def root(k: dg.AssetKey) -> dg.AssetKey:
        while parent[k] != k:
            k = parent[k]
        return k

    for key in keys:
        for up in graph.get(key).parent_keys:
            if up in parent:
                parent[root(up)] = root(key)
    islands: dict[dg.AssetKey, list[str]] = {}
    for key in keys:
        islands.setdefault(root(key), []).append(key.to_user_string())
    return sorted(sorted(i) for i in islands.values())


def test_the_lineage_is_one_connected_graph(location: dg.Definitions) -> None:
    islands = lineage_islands(location)
    print("lineage islands:", len(islands), islands)
    assert islands == [ASSETS]


# every edge of the chain, each carrying data the downstream asset reads
EDGES = {
    "history/kline_csv": {"history/raw_zips"},
    "history/klines": {"history/kline_csv"},
    "features": {"history/klines"},
    "regime_periods": {"history/klines"},
    "market_correlation": {"history/klines"},
    "strategy_results": {"history/klines", "regime_periods"},
    "portfolio_results": {"history/klines", "regime_periods"},
    "performance_matrix": {"strategy_results", "portfolio_results", "regime_periods"},
    "top_strategies": {"strategy_results", "portfolio_results"},
    "selector_training_set": {
        "strategy_results",
        "regime_periods",
        "fear_greed",
        "news_sentiment",
    },
    "selector_model": {"selector_training_set"},
    "bot_assignments": {"top_strategies", "selector_model"},
    "paper_replay_report": {"bot_assignments"},
    "venues/venue_basis": {"venues/venue_candles", "history/klines"},
    "venues/arbitrage_study": {"venues/venue_basis"},
}


def test_each_stage_reads_the_stage_before_it(location: dg.Definitions) -> None:
    graph = location.resolve_asset_graph()
    parents = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.get_all_asset_keys()
    }
    assert {k: v for k, v in parents.items() if v} == EDGES


def test_discovery_reads_every_month_of_its_own_series(location: dg.Definitions) -> None:
    """strategy_results (family × series) ← klines and regime_periods (series × month): the
    partition's series, all its months; nothing of another series."""
    graph = location.resolve_asset_graph()
    node = graph.get(dg.AssetKey("strategy_results"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("series", ["spot-BTCUSDT-1h", "spot-ETHUSDT-1h"])
        for up in ("regime_periods", "history/klines"):
            upstream = graph.get(dg.AssetKey.from_user_string(up))
            mapping = node.partition_mappings[upstream.key]
            result = mapping.get_upstream_mapped_partitions_result_for_partitions(
                node.partitions_def.subset_with_partition_keys(["sma_cross|spot-BTCUSDT-1h"]),
                node.partitions_def,
                upstream.partitions_def,
                dynamic_partitions_store=instance,
            )
            keys = list(result.partitions_subset.get_partition_keys())
            assert keys and all(k.endswith("|spot-BTCUSDT-1h") for k in keys)
            assert "2024-03-01|spot-BTCUSDT-1h" in keys


def config_fields(config_schema: object) -> dict[str, str | None]:
    """The fields of a config schema (an op's or a resource's) and their descriptions."""
    if config_schema is None:
        return {}
    config_type = config_schema.as_field().config_type  # type: ignore[attr-defined]
    return {name: f.description for name, f in getattr(config_type, "fields", {}).items()}


def test_every_asset_has_a_code_version_owners_and_a_description(
    location: dg.Definitions,
) -> None:
    graph = location.resolve_asset_graph()
    missing = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        lacks = [
            what
            for what, value in (
                ("code_version", node.code_version),
                ("owners", node.owners),
                ("description", node.description),
            )
            if not value
        ]
        if lacks:
            missing[key.to_user_string()] = lacks
        assert all(o.startswith("team:") or "@" in o for o in node.owners)
    assert missing == {}
    # discovery's version is the built-in families' versions and code fingerprints
    from trading_pipeline.defs.versions import discovery_version

    for name in ("strategy_results", "portfolio_results", "performance_matrix", "top_strategies"):
        version = graph.get(dg.AssetKey(name)).code_version
        assert version is not None and version.startswith("families-")
    assert discovery_version() != ""


def test_every_config_field_is_described(location: dg.Definitions) -> None:
    """What the launchpad shows: each asset's and job's config fields and each resource's."""
    undescribed = []
    graph = location.resolve_asset_graph()
    ops = {ad.op.name: ad.op for ad in graph.assets_defs if ad.is_executable}
    for name in JOBS:
        for node_def in location.resolve_job_def(name).graph.node_defs:
            ops[node_def.name] = node_def  # type: ignore[assignment]
    fields = 0
    for op_name, op in sorted(ops.items()):
        for field, description in config_fields(op.config_schema).items():
            fields += 1
            if not description:
                undescribed.append(f"{op_name}.{field}")
    for name, resource in sorted((location.resources or {}).items()):
        for field, info in type(resource).model_fields.items():  # type: ignore[union-attr]
            fields += 1
            if not info.description:
                undescribed.append(f"resource {name}.{field}")
    assert fields > 40 and undescribed == []
