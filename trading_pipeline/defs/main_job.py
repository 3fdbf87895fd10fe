"""The main job: the whole chain, from Binance Vision to a paper replay, in the persistent instance.

``python -m trading_pipeline.defs.main_job`` (what ``make main`` runs) materializes, stage by
stage as in-process runs in the instance of ``DAGSTER_HOME`` (so they show in the UI after):
history for the configured universe (``TP_UNIVERSE`` from ``TP_START``; with
``--series-from-fleet`` also every bot's own series from the fleet file) → features and regimes →
discovery (``TP_MAIN_FAMILIES`` × series, ``TP_MAIN_TRIALS`` trials × ``TP_MAIN_FOLDS`` folds) →
performance matrix and top strategies → selector training set and model → one decision per bot →
bot assignments → a paper replay of the last complete month; then a summary read back from what
the runs wrote. ``TP_VISION_URL`` / ``TP_VISION_LISTING_URL`` point it at a mirror.

Exit codes: 0 done; 1 a stage failed, a published month did not arrive, or Binance Vision is
unreachable (one line saying so); 2 bad input; 128 + the signal when stopped by Ctrl-C/SIGTERM.
``-v`` (or ``TP_VERBOSE=1``) shows Dagster's own log lines.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from trading_pipeline.defs.chain import STAGES, Budget, Chain, ChainFailed
from trading_pipeline.errors import UserInputError
from trading_pipeline.interrupts import Stopped, StopSignals, default_handlers
from trading_pipeline.settings import Settings, SettingsError

QUIET_LOGGERS = ("dagster", "alembic", "mlflow", "optuna", "urllib3", "httpx", "numba")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make main",
        description="Run the whole chain (history → … → paper replay) into DAGSTER_HOME.",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="Dagster's log lines (TP_VERBOSE=1)"
    )
    p.add_argument("--families", metavar="A,B", help="families to tune (TP_MAIN_FAMILIES)")
    p.add_argument("--trials", metavar="N", help="trials per fold and study (TP_MAIN_TRIALS)")
    p.add_argument("--folds", metavar="N", help="walk-forward folds (TP_MAIN_FOLDS)")
    p.add_argument(
        "--series-from-fleet",
        action="store_true",
        help="also every bot's (symbol, interval) from the fleet file: bot2's ten 5m coins, "
        "bot3's hourly universe, each tuned on its bots' families (default: TP_UNIVERSE only)",
    )
    p.add_argument(
        "--stages",
        metavar="A,B",
        help=f"only these stages, in order (default all: {','.join(STAGES)})",
    )
    return p


def quiet() -> None:
    """Silence libraries' log lines and warnings (Dagster's console logger is set per run)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")


def _stages(text: str | None) -> tuple[str, ...]:
    if not text:
        return STAGES
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in STAGES]
    if unknown or not names:
        raise UserInputError(
            f"--stages: unknown {', '.join(unknown) or '(none)'}; use {','.join(STAGES)}"
        )
    return names


def _echo(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chain; see the module's docstring for the exit codes."""
    args = _parser().parse_args(argv)
    verbose = args.verbose or os.environ.get("TP_VERBOSE", "").lower() in ("1", "true", "yes")
    try:
        Settings.from_env()
        budget = Budget.from_env(families=args.families, trials=args.trials, folds=args.folds)
        stages = _stages(args.stages)
    except (UserInputError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not os.environ.get("DAGSTER_HOME"):
        home = Path("dagster_home").resolve()
        if not home.is_dir():
            print(
                "error: DAGSTER_HOME is not set (make main sets it to ./dagster_home)",
                file=sys.stderr,
            )
            return 2
        os.environ["DAGSTER_HOME"] = str(home)
    if not verbose:
        quiet()
    chain: Chain | None = None
    code = 0
    with StopSignals() as stop:
        try:
            with dg.DagsterInstance.get() as instance:
                chain = Chain(
                    instance,
                    budget=budget,
                    echo=_echo,
                    verbose=verbose,
                    stop=stop,
                    series_from_fleet=args.series_from_fleet,
                )
                chain.run(stages)
                from trading_pipeline.defs.chain_summary import summary_lines  # lazy: polars

                for line in summary_lines(chain):
                    _echo(line)
        except Stopped as exc:
            stage = chain.report.current if chain and chain.report.current else "start-up"
            print(
                f"stopped by {exc} during the {stage} stage: finished runs are in "
                f"{os.environ['DAGSTER_HOME']}; a re-run skips verified files and resumes the studies",
                file=sys.stderr,
                flush=True,
            )
            code = exc.exit_code
        except ChainFailed as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            code = 1
        except UserInputError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            code = 2
    default_handlers()
    return code


if __name__ == "__main__":
    sys.exit(main())
