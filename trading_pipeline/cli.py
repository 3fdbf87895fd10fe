"""The ``trading-pipeline`` command.

Each domain package owns its verbs in its own ``cli.py`` and registers them here, so the
top-level module stays a list. Heavy libraries are imported inside the commands.
"""

from __future__ import annotations

import sys

import typer
from typer._click import exceptions as cx  # typer 0.29 vendors click; its errors live here

from trading_pipeline.errors import UserInputError

app = typer.Typer(
    name="trading-pipeline",
    help="Crypto market history → honestly tested strategies → bots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Crypto market history → honestly tested strategies → bots."""


@app.command()
def version() -> None:
    """Print the version."""
    from trading_pipeline import __version__

    print(__version__)


def _register() -> None:
    from trading_pipeline import ops_cli
    from trading_pipeline.backtest import cli as backtest_cli
    from trading_pipeline.bots import cli as bot_cli
    from trading_pipeline.bots import fleet_cli
    from trading_pipeline.discovery import cli as discovery_cli
    from trading_pipeline.history import cli as history_cli
    from trading_pipeline.history import import_cli
    from trading_pipeline.regimes import cli as regimes_cli
    from trading_pipeline.selector import cli as selector_cli
    from trading_pipeline.selector import select_cli
    from trading_pipeline.venues import cli as venue_cli

    for module in (
        history_cli,
        import_cli,
        backtest_cli,
        discovery_cli,
        regimes_cli,
        ops_cli,
        venue_cli,
        select_cli,
        bot_cli,
        selector_cli,
        fleet_cli,
    ):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the command; bad input prints one ``error:`` line and returns 2."""
    try:
        result = app(args=argv, standalone_mode=False)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except cx.NoArgsIsHelpError:
        return 0
    except cx.UsageError as exc:
        print(f"error: {exc.format_message().splitlines()[0]}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
