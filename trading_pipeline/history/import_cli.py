"""``trading-pipeline import …``: bring candles from other tools into the history store."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the import verbs to the top-level app."""
