"""Operational verbs: ``ui`` (the Dagster UI on 127.0.0.1)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the operational verbs to the top-level app."""
