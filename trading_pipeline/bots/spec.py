"""The fleet in force: which bots exist, what each may trade and its share of capital.

The fleet is a TOML file (:mod:`trading_pipeline.bots.fleet_file`): the one shipped in the
package, or the one ``TP_FLEET_FILE`` names. This module is what the deployment store, the
runners, the replay and the CLI read: :func:`current_fleet` (the file in force, re-read when it
changes), :func:`bot_spec` and :func:`default_split`. ``FLEET`` / ``FLEET_BY_NAME`` are the
package default (the plan's five bots with 30/25/25/15/5), for callers that take the fleet as
an argument and default to it. Nothing here talks to an exchange or writes a file.
"""

from __future__ import annotations

from trading_pipeline.bots.fleet_file import (
    CASH,
    BotSpec,
    Fleet,
    FleetFileError,
    load_fleet,
)
from trading_pipeline.errors import UserInputError
from trading_pipeline.settings import fleet_file_from_env

__all__ = [
    "CASH",
    "FLEET",
    "FLEET_BY_NAME",
    "SCALPING_UNIVERSE",
    "BotSpec",
    "Fleet",
    "FleetFileError",
    "bot_spec",
    "current_fleet",
    "default_split",
    "load_fleet",
    "use_fleet",
]

DEFAULT_FLEET: Fleet = load_fleet(None)
FLEET: tuple[BotSpec, ...] = DEFAULT_FLEET.bots
FLEET_BY_NAME: dict[str, BotSpec] = DEFAULT_FLEET.by_name
# Ten liquid spot pairs for the 5-minute scalper (the default file's "scalping" universe).
SCALPING_UNIVERSE: tuple[str, ...] = tuple(DEFAULT_FLEET.universes.get("scalping", ()))

_installed: Fleet | None = None


def use_fleet(fleet: Fleet | None) -> None:
    """Put ``fleet`` in force for this process (None: back to ``TP_FLEET_FILE`` / the default)."""
    global _installed
    _installed = fleet


def current_fleet() -> Fleet:
    """The fleet in force: one installed by :func:`use_fleet`, else the file ``TP_FLEET_FILE``
    names (validated; a bad file is a one-line :class:`FleetFileError`), else the package's."""
    if _installed is not None:
        return _installed
    path = fleet_file_from_env()
    return DEFAULT_FLEET if path is None else load_fleet(path)


def bot_spec(name: str) -> BotSpec:
    """The bot called ``name`` in the fleet in force; unknown is a one-line UserInputError."""
    fleet = current_fleet()
    try:
        return fleet.by_name[name]
    except KeyError:
        raise UserInputError(f"unknown bot {name!r}; known: {', '.join(fleet.names)}") from None


def default_split() -> dict[str, float]:
    """Each bot's share of capital in the fleet in force (the plan's 30/25/25/15/5 by default)."""
    return current_fleet().split()
