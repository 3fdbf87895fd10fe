"""The ``trading-pipeline`` command: one Typer sub-app per verb group, merged here.

Groups with a name (``fleet status``) are added under it; top-level verbs (``backtest``) come
from an unnamed sub-app. Heavy libraries are imported inside the commands. Help is plain text
(no rich markup: square brackets in help are literal).
"""

from __future__ import annotations

import sys

import typer

from trading_pipeline.cli import (
    backtest,
    bots,
    data,
    discovery,
    fleet,
    history,
    news,
    ops,
    plot,
    regimes,
    selector,
    studies,
    venues,
)
from trading_pipeline.errors import EnvironmentFault, UserInputError
from trading_pipeline.settings import SettingsError

app = typer.Typer(
    name="trading-pipeline",
    help="Crypto market history → honestly tested strategies → bots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)

for group in (
    history,
    data,
    backtest,
    plot,
    discovery,
    studies,
    regimes,
    selector,
    bots,
    fleet,
    venues,
    news,
    ops,
):
    for sub, name in group.APPS:
        app.add_typer(sub, name=name)


@app.callback()
def _root() -> None:
    """Crypto market history → honestly tested strategies → bots."""


def main(argv: list[str] | None = None) -> int:
    """Run the command; bad input prints one ``error:`` line and returns 2, an environment that
    cannot do it (:class:`EnvironmentFault`, a permission denied) one line and returns 1."""
    try:
        result = app(args=argv, prog_name="trading-pipeline", standalone_mode=False)
    except (UserInputError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EnvironmentFault as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:  # a folder or file this user may not write (or read)
        print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # click's exceptions (typer vendors click)
        message = exc.format_message()
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called bare: its help
            print(message)
            return 0
        print(f"error: {message.splitlines()[0] if message else exc}", file=sys.stderr)
        return exc.exit_code
    return int(result or 0)
