"""``trading-pipeline fleet``: show, status, allocate, halt, resume and the daily-loss check.

``show`` prints the fleet in force (the fleet file: ``TP_FLEET_FILE`` or the package's). The
other verbs work on the bots directory (``--bots-dir``/``TP_BOTS_DIR``, default
``<data dir>/bots``): its assignments, its runners' ledgers (``<bot>/<mode>/ledger.sqlite``)
and its HALT file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_pipeline.cli.options import (
    BotsDirOpt,
    DataDirOpt,
    JsonOpt,
    finite,
    positive,
    settings_from,
)
from trading_pipeline.errors import EnvironmentFault, UserInputError

fleet_app = typer.Typer(
    help="The fleet of bots as one: status, allocation, kill switch.", no_args_is_help=True
)
APPS = [(fleet_app, "fleet")]

BotsDir = BotsDirOpt
DataDir = DataDirOpt
Mode = Annotated[str, typer.Option("--mode", metavar="MODE", help="whose ledgers: paper or live")]
AsJson = JsonOpt


def _bots_dir(data_dir: Path | None, bots_dir: Path | None) -> Path:
    return settings_from(data_dir, bots_dir=bots_dir).bots_dir


def open_ledgers(root: Path, mode: str) -> dict[str, Any]:
    """Every bot's ledger for ``mode``; one that is not a SQLite ledger is a one-line error
    naming it (exit 1), and none stays open."""
    import sqlite3

    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.fleet import close_all, ledger_paths
    from trading_pipeline.bots.ledger import Ledger

    ledgers: dict[str, Any] = {}
    for bot, path in ledger_paths(root, mode).items():
        try:
            ledgers[bot] = Ledger(path)
        except sqlite3.DatabaseError as exc:
            close_all(list(ledgers.values()))
            raise EnvironmentFault(f"{bot}'s ledger {path} is unreadable: {exc}") from exc
    return ledgers


def _now_ms() -> int:
    return int(time.time() * 1000)


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


@fleet_app.command("show")
def show(
    as_json: AsJson = False,
    fleet_file: Annotated[
        Path | None,
        typer.Option("--fleet-file", help="fleet TOML file (default TP_FLEET_FILE, else built in)"),
    ] = None,
) -> None:
    """The fleet in force: each bot's role, families, symbols, interval, venues, capital
    fraction and risk limits, and where the fleet file is."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.spec import current_fleet, load_fleet

    fleet = load_fleet(fleet_file) if fleet_file is not None else current_fleet()
    data = fleet.to_dict()
    if as_json:
        _print(data)
        return
    _print_fleet(data)


def _print_fleet(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)  # pipes: never truncate
    console.print(f"fleet file: {escape(data['source'])}")
    table = Table("bot", "role", "families", "symbols", "interval", "venues", "fraction", "limits")
    for b in data["bots"]:
        r = b["risk"]
        table.add_row(
            escape(b["name"]),
            escape(b["role"]),
            escape(", ".join(b["families"])),
            escape(", ".join(b["symbols"])),
            b["interval"],
            escape(", ".join(b["venues"])),
            f"{b['capital_fraction']:.1%}",
            f"day {r['daily_loss']:.0%}, position {r['max_position_fraction']:.0%}, "
            f"drawdown {r['max_drawdown']:.0%}",
        )
    console.print(table)
    console.print(
        f"capital {data['capital_total']:.1%} of the fleet's; fleet daily loss limit "
        f"{data['daily_loss']:.0%}"
    )
    for b in data["bots"]:
        console.print(escape(f"  {b['name']}: {data_source(b)}"))


def data_source(bot: dict[str, Any]) -> str:
    """Where a bot's bars come from (and, for a momentum bot, how its symbols are picked)."""
    vision = [s for s in bot["symbols"] if ":" not in s]
    venue = [s for s in bot["symbols"] if ":" in s]
    parts = []
    if vision:
        parts.append(
            f"{len(vision)} Binance Vision series at {bot['interval']} (history sensor, "
            "TP_FLEET_SERIES)"
        )
    if venue:
        parts.append(f"venue candles {', '.join(venue)} (venues assets)")
    if bot.get("momentum_top"):
        parts.append(
            f"trades the top {bot['momentum_top']} by {bot['momentum_lookback']}-bar return, "
            "recomputed at each decision from closed bars"
        )
    return "; ".join(parts)


@fleet_app.command("status")
def status(
    as_json: AsJson = False,
    mode: Mode = "paper",
    bots_dir: BotsDir = None,
    data_dir: DataDir = None,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            metavar="SECONDS",
            callback=positive,
            help="refresh every SECONDS until Ctrl-C (with --json: one JSON line per refresh)",
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", metavar="N", help="with --watch: stop after N views")
    ] = None,
) -> None:
    """Positions, exposure per symbol and in total, PnL per bot and for the fleet."""
    if count is not None and (count < 1 or watch is None):
        raise UserInputError("--count needs --watch and must be at least 1")
    root = _bots_dir(data_dir, bots_dir)
    if watch is None:
        _show(_status_data(root, mode), as_json)
        return
    import signal

    stopping = {"now": False}

    def stop(signum: int, frame: Any) -> None:
        stopping["now"] = True

    previous = signal.signal(signal.SIGTERM, stop)
    shown = 0
    try:
        while not stopping["now"]:
            data = _status_data(root, mode)
            if not as_json and sys.stdout.isatty():
                print("\033[2J\033[H", end="")  # clear the screen, cursor home
            if as_json:
                print(json.dumps(data, sort_keys=True, default=str), flush=True)
            else:
                _show(data, as_json=False)
                print(f"(every {watch:g} s; Ctrl-C stops)", flush=True)
            shown += 1
            if count is not None and shown >= count:
                break
            deadline = time.monotonic() + watch
            while not stopping["now"] and time.monotonic() < deadline:
                time.sleep(min(0.2, watch))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@fleet_app.command("web")
def web(
    mode: Mode = "paper",
    bots_dir: BotsDir = None,
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="port on 127.0.0.1")] = 8050,
) -> None:
    """A read-only page of the fleet on http://127.0.0.1:PORT/ (assignments with lineage links,
    positions, equity curves, today's loss against the limit, risk events); Ctrl-C stops it."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.web import fleet_snapshot, make_server, now_ms
    from trading_pipeline.serving import serve_in_foreground

    if mode not in {"paper", "live"}:
        raise UserInputError(f"--mode must be paper or live, got {mode!r}")
    if not 1 <= port <= 65535:
        raise UserInputError(f"--port must be 1-65535, got {port}")
    root = _bots_dir(data_dir, bots_dir)
    settings = settings_from(data_dir)

    def snapshot() -> dict[str, Any]:
        return fleet_snapshot(
            root, mode, now_ms=now_ms(), mlflow_ui=settings.mlflow_ui_url,
            dagster_ui=settings.dagster_ui_url,
        )  # fmt: skip

    try:
        server = make_server(snapshot, port=port)
    except OSError as exc:
        raise UserInputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None

    serve_in_foreground(server, f"fleet ({mode}) on http://127.0.0.1:{port}/ (Ctrl-C stops)")


def _show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print(data)
    else:
        _print_status(data)
    sys.stdout.flush()


def _status_data(root: Path, mode: str) -> dict[str, Any]:
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.deploy_store import DeploymentStore
    from trading_pipeline.bots.fleet import close_all, fleet_view

    store = DeploymentStore(root)
    ledgers = open_ledgers(root, mode)
    try:
        view = fleet_view(ledgers, now_ms=_now_ms())
    finally:
        close_all(list(ledgers.values()))
    assignments = store.all_current()
    data = view.to_dict()
    data["mode"] = mode
    data["bots_dir"] = str(root)
    data["halt"] = store.halted()
    data["assignments"] = {
        b: {
            "version": a.version,
            "family": a.family,
            "symbols": list(a.symbols),
            "interval": a.interval,
            "capital_fraction": a.capital_fraction,
            # the selector's reason (a momentum bot's top-N pick is in it)
            "reason": dict(a.lineage).get("reason"),
        }
        for b, a in assignments.items()
    }
    return data


def _print_status(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)  # pipes: never truncate
    halt = data["halt"]
    console.print(
        f"fleet ({data['mode']}) in {escape(str(data['bots_dir']))}: "
        + (f"[bold red]HALTED[/]: {escape(str(halt.get('reason')))}" if halt else "running")
    )
    table = Table(
        "bot", "strategy", "v", "fraction", "equity", "PnL", "PnL %", "day PnL", "positions"
    )
    names = sorted(set(data["bots"]) | set(data["assignments"]))
    for bot in names:
        a = data["assignments"].get(bot, {})
        b = data["bots"].get(bot)
        pos = ", ".join(f"{s} {q:g}" for s, q in (b or {}).get("positions", {}).items())
        table.add_row(
            bot,
            a.get("family", "-"),
            str(a.get("version", "-")),
            f"{a['capital_fraction']:.1%}" if a else "-",
            f"{b['equity']:.2f}" if b else "-",
            f"{b['pnl']:+.2f}" if b else "-",
            f"{b['pnl_pct']:+.2%}" if b else "-",
            f"{b['day_pnl']:+.2f}" if b else "-",
            pos or "-",
        )
    console.print(table)
    console.print(
        f"equity {data['equity']:.2f}, PnL {data['pnl']:+.2f}; exposure (at "
        f"{data['exposure_valued_at']}): gross {data['gross_exposure']:.2f}, net "
        f"{data['net_exposure']:.2f}"
    )
    for symbol, value in data["exposure_by_symbol"].items():
        console.print(f"  {symbol}: {value:.2f}")
    for c in data["conflicts"]:
        console.print(f"[bold red]opposite positions[/] {escape(str(c))}")
    for bot in names:
        reason = data["assignments"].get(bot, {}).get("reason")
        if reason:
            console.print(escape(f"  {bot}: {reason}"))


@fleet_app.command("allocate")
def allocate_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show, deploy nothing")] = False,
    as_json: AsJson = False,
    days: Annotated[
        int, typer.Option(min=1, metavar="N", help="look-back of recent performance, days")
    ] = 30,
    band: Annotated[
        float,
        typer.Option(
            min=0.0, callback=finite, metavar="FRACTION", help="each bot within plan × (1 ± band)"
        ),
    ] = 0.5,
    tilt: Annotated[
        float,
        typer.Option(callback=finite, metavar="X", help="how hard returns pull the fractions"),
    ] = 2.0,
    mode: Mode = "paper",
    bots_dir: BotsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Re-allocate capital by recent performance within bounds and deploy it."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.deploy_store import DeploymentStore
    from trading_pipeline.bots.fleet import AllocationRules, close_all, run_allocation

    rules = AllocationRules(band=band, tilt=tilt, days=days)
    root = _bots_dir(data_dir, bots_dir)
    store = DeploymentStore(root)
    ledgers = open_ledgers(root, mode)
    try:
        result = run_allocation(store, ledgers, now_ms=_now_ms(), rules=rules, dry_run=dry_run)
    finally:
        close_all(list(ledgers.values()))
    data = result.to_dict()
    data["dry_run"] = dry_run
    if as_json:
        _print(data)
    else:
        for bot, f in result.fractions.items():
            r = result.returns[bot]
            ret = f"{r:+.2%}" if r is not None else "no history"
            print(f"{bot}: {result.plan[bot]:.1%} → {f:.2%} (recent {ret})")
        print(f"total {sum(result.fractions.values()):.1%}")
        if dry_run:
            print("dry run: nothing deployed")
        elif result.report is not None:
            rep = result.report
            print(
                f"deployed {len(rep.deployed)}, unchanged {len(rep.unchanged)}, "
                f"refused {len(rep.refused)}"
            )
            for r_ in rep.refused:
                print(f"refused {r_.bot}: {r_.reason}")
    if result.report is not None and result.report.refused:
        raise typer.Exit(1)


@fleet_app.command("halt")
def halt(
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="why (recorded in the HALT file)")
    ],
    bots_dir: BotsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Kill switch: every runner closes its positions and opens nothing until resumed."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.deploy_store import DeploymentStore

    store = DeploymentStore(_bots_dir(data_dir, bots_dir))
    if not reason.strip():
        raise UserInputError("--reason must say why")
    path = store.halt(reason, by="operator")
    print(f"halted: {path}")


@fleet_app.command("resume")
def resume(bots_dir: BotsDir = None, data_dir: DataDir = None) -> None:
    """Lift the kill switch."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.deploy_store import DeploymentStore

    store = DeploymentStore(_bots_dir(data_dir, bots_dir))
    print("resumed" if store.resume() else "not halted")


@fleet_app.command("risk-check")
def risk_check(
    limit: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            callback=finite,
            metavar="FRACTION",
            help="fleet daily-loss limit, fraction (default: the fleet file's)",
        ),
    ] = None,
    as_json: AsJson = False,
    mode: Mode = "paper",
    bots_dir: BotsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Check the fleet's daily loss; halt the fleet when it reaches the limit."""
    # lazy: loaded with this verb only, so the command line starts fast
    from trading_pipeline.bots.deploy_store import DeploymentStore
    from trading_pipeline.bots.fleet import check_fleet_loss, close_all, open_ledgers
    from trading_pipeline.bots.spec import current_fleet

    if limit is None:
        limit = current_fleet().daily_loss
    root = _bots_dir(data_dir, bots_dir)
    store = DeploymentStore(root)
    ledgers = open_ledgers(root, mode)
    try:
        risk = check_fleet_loss(store, ledgers, now_ms=_now_ms(), limit=limit)
    finally:
        close_all(list(ledgers.values()))
    data = {
        "loss": risk.loss,
        "limit": limit,
        "equity": risk.equity,
        "day_start_equity": risk.day_start_equity,
        "halted_now": risk.halted_now,
        "lifted_now": risk.lifted_now,
        "halt": store.halted(),
    }
    if as_json:
        _print(data)
    else:
        print(
            f"fleet daily loss {risk.loss:.2%} (limit {limit:.0%})"
            + ("; HALTED" if data["halt"] else "")
        )
