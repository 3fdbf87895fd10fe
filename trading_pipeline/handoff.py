"""The words the selector and the bots share, so that neither imports the other.

The selector decides for a fleet it is given (anything shaped like :class:`BotLike`, the bots'
``BotSpec`` in production); the bots read the selector's decisions through their own protocol.
"""

from __future__ import annotations

from typing import Protocol

CASH = "cash"  # the choice "hold no position": every bot may always be given it
NO_CHAMPION = "no champion"  # the reason a decision carries when no champion model decided


class BotLike(Protocol):
    """What the selector needs to know of a bot: its name, what it may trade, and on what."""

    @property
    def name(self) -> str: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def interval(self) -> str: ...

    @property
    def families(self) -> tuple[str, ...]: ...

    def allows(self, family: str) -> bool: ...
