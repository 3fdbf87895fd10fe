"""Command-line verbs of the history package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's verbs to the top-level app."""
