"""The paper replay report as an asset: the whole fleet on history, logged as an MLflow run.

A thin shell over :func:`trading_pipeline.bots.replay.replay_fleet` (the same runner code a live
bot runs, with a replay clock and paper brokers): metadata carries PnL per bot beside
buy-and-hold, the equity chart and the risk events; ``report.json`` and ``equity.png`` are in
``<bots_dir>/replays/<from>-<to>/`` and attached to the MLflow run.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from trading_pipeline.defs.bots.assets import GROUP, bot_assignments
from trading_pipeline.defs.bots.resources import BotsRuntime
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import image_md, table, tidy
from trading_pipeline.defs.versions import TRADING, source_version
from trading_pipeline.errors import UserInputError

EXPERIMENT = "paper-replay"


class ReplayConfig(dg.Config):
    """The replay window (``from_date`` inclusive, ``to_date`` exclusive, ``YYYY-MM-DD``) and
    the fleet's capital, split by the plan."""

    from_date: str = Field(default="2022-05-01", description="first day replayed, YYYY-MM-DD (UTC)")
    to_date: str = Field(
        default="2022-06-01", description="the day after the last one replayed, YYYY-MM-DD (UTC)"
    )
    capital: float = Field(default=1000.0, description="the fleet's capital, split by the plan")


def _day(value: str, name: str) -> datetime:
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise UserInputError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


PNL_DESCRIPTIONS = {
    "strategy": "the family the bot's assignment runs",
    "start": "capital at the start of the replay",
    "end": "equity at the end of the replay",
    "pnl": "end - start",
    "return": "end / start - 1 (0.05 = +5%)",
    "buy_and_hold": "return of buying the bot's symbols at the start and holding",
    "fills": "orders filled",
    "risk_events": "risk events (daily loss, drawdown, halt)",
    "in_sample": "share of the replay inside the deployed study's train/test windows",
    "assignment": "what it ran: family, interval, symbols (a momentum bot: its top-N at the start)",
    "cash_reason": "why it held cash (empty when it ran a strategy)",
    "note": "",
}


def assignment_line(bot: Mapping[str, Any]) -> str:
    """``sma_cross 1h BTCUSDT,ETHUSDT`` (+ ``; top-5: …`` for a momentum bot)."""
    a = bot.get("assignment") or {}
    line = f"{a.get('family', bot['family'])} {a.get('interval', '')} " + ",".join(
        a.get("symbols") or bot["symbols"]
    )
    pick = bot.get("momentum_pick")
    if pick:
        line += f"; top-{pick['top']}: {','.join(pick['picked']) or 'none'}"
    return line


def _tables(data: dict[str, Any]) -> tuple[dg.TableMetadataValue, dg.TableMetadataValue]:
    def money(x: Any) -> float | None:
        return round(float(x), 2) if isinstance(x, int | float) else None

    pnl_rows = [
        {
            "bot": name,
            "strategy": b["family"],
            "start": money(b["initial"]),
            "end": money(b["final"]),
            "pnl": money(b["pnl"]),
            "return": b["return"],
            "buy_and_hold": b.get("buy_and_hold_return"),
            "fills": len(b["fills"]),
            "risk_events": len(b["risk_events"]),
            "in_sample": b.get("in_sample_fraction"),
            "assignment": assignment_line(b),
            "cash_reason": b.get("cash_reason") or "",
            "note": b.get("note", ""),
        }
        for name, b in data["bots"].items()
    ]
    pnl = table(pnl_rows, ["bot", *PNL_DESCRIPTIONS], descriptions=PNL_DESCRIPTIONS)
    events = [
        {
            "bot": name,
            "time": str(e.get("time", "")),
            "kind": e.get("kind", ""),
            "detail": ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("time", "kind"))[
                :200
            ],
        }
        for name, b in data["bots"].items()
        for e in b["risk_events"]
    ]
    risk = table(events, ["bot", "time", "kind", "detail"])
    return pnl, risk


def _log_mlflow(
    lake: DataLake,
    data: dict[str, Any],
    files: list[Any],
    dagster_run_id: str,
    asset_key: dg.AssetKey,
) -> tuple[str, str]:
    tracker = lake.tracker(EXPERIMENT)
    run_id = tracker.start_run(
        f"paper replay {data['from'][:10]} → {data['to'][:10]}",
        tags={
            "dagster_run_id": dagster_run_id,
            "in_sample_bots": ",".join(data.get("in_sample_bots", [])) or "none",
            **lake.dagster_tags(dagster_run_id, asset_key),
        },
        description=(
            f"**Paper replay** of the fleet from {data['from'][:10]} to {data['to'][:10]} "
            f"with {data['capital']:,} of capital: each bot trades its deployed assignment "
            "through the paper broker (fee and slippage as tuned), the fleet's daily loss limit "
            "enforced at every bar close. Bars a bot's parameters were tuned on are in sample "
            "(`<bot>.in_sample_fraction`); the rest is out of sample."
        ),
    )
    status = "FAILED"
    try:
        params: dict[str, Any] = {
            "from": data["from"],
            "to": data["to"],
            "capital": data["capital"],
        }
        metrics = {
            "final": data["final"],
            "pnl": data["pnl"],
            "return": data["pnl"] / data["capital"],
        }
        for name, b in data["bots"].items():
            params[f"{name}.family"] = b["family"]
            params[f"{name}.params"] = b["params"]
            metrics[f"{name}.pnl"] = b["pnl"]
            metrics[f"{name}.return"] = b["return"]
            metrics[f"{name}.fills"] = len(b["fills"])
            metrics[f"{name}.risk_events"] = len(b["risk_events"])
            if b.get("buy_and_hold_return") is not None:
                metrics[f"{name}.buy_and_hold_return"] = b["buy_and_hold_return"]
            if b.get("in_sample_fraction") is not None:  # overlaps its tuning windows
                metrics[f"{name}.in_sample_fraction"] = b["in_sample_fraction"]
                params[f"{name}.tuning_study"] = b["in_sample"]["study"]
        tracker.log_params(run_id, params)
        tracker.log_metrics(run_id, metrics)
        for f in files:
            if f is not None and f.exists():
                tracker.log_artifact(run_id, f)
        status = "FINISHED"
    finally:
        tracker.end_run(run_id, status)
    return tracker.experiment_id, run_id


@dg.asset(
    group_name=GROUP,
    kinds={"python", "mlflow"},
    description="The whole fleet replayed on history with paper brokers: PnL, equity, risk.",
    deps=[bot_assignments],  # the assignments in force are what the replay trades
    code_version=source_version(
        __name__,
        "trading_pipeline.bots.replay",
        "trading_pipeline.bots.paper",
        "trading_pipeline.bots.runner",
        "trading_pipeline.bots.risk",
    ),
    owners=[TRADING],
)
def paper_replay_report(
    context: dg.AssetExecutionContext,
    config: ReplayConfig,
    lake: DataLake,
    bots_runtime: BotsRuntime,
) -> dg.MaterializeResult:
    from trading_pipeline.bots.replay import replay_report, store_loader, tuning_of_fleet

    start, end = _day(config.from_date, "from_date"), _day(config.to_date, "to_date")
    if end <= start:
        raise UserInputError(f"from_date {config.from_date} is not before to_date {config.to_date}")
    if not config.capital > 0:
        raise UserInputError(f"capital must be positive, got {config.capital}")
    layout = lake.layout
    store = bots_runtime.store(layout)
    target = layout.replay_dir(start.date(), end.date())
    # lazy: as replay_report's module, the cash reasons read the fleet file
    from trading_pipeline.bots.cash_reason import cash_reasons
    from trading_pipeline.bots.spec import current_fleet

    current = store.all_current()
    data = replay_report(
        target,
        start=start,
        end=end,
        load=store_loader(layout.history_dir, start=start, end=end, market=bots_runtime.market),
        assignments=current or None,
        capital=config.capital,
        tuning=tuning_of_fleet(layout, current),
        reasons=cash_reasons(layout, current_fleet().bots, current),
    )
    report_json, report_png = target / "report.json", target / "equity.png"
    experiment_id, run_id = _log_mlflow(
        lake, data, [report_json, report_png], context.run.run_id, context.asset_key
    )
    pnl, risk = _tables(data)
    metadata: dict[str, Any] = {
        "capital": dg.MetadataValue.float(round(float(data["capital"]), 2)),
        "final": dg.MetadataValue.float(round(float(data["final"]), 2)),
        "pnl": dg.MetadataValue.float(round(float(data["pnl"]), 2)),
        "pnl_per_bot": pnl,
        "risk_events": risk,
        "report": dg.MetadataValue.path(str(report_json)),
        "mlflow_experiment_id": experiment_id,
        "mlflow_run_id": run_id,
        "mlflow_run": dg.MetadataValue.url(lake.run_link(experiment_id, run_id)),
    }
    if report_png.exists():
        metadata["equity"] = image_md(report_png.read_bytes(), "equity")
    context.log.info(
        f"paper replay {start:%Y-%m-%d} → {end:%Y-%m-%d}: {data['capital']:.2f} → "
        f"{data['final']:.2f}"
    )
    return dg.MaterializeResult(metadata=tidy(metadata))
