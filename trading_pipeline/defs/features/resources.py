"""The Fear & Greed source of the features assets (their tables live where ``DataLake`` says)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class FearGreedSource(dg.ConfigurableResource):
    """alternative.me's Fear & Greed API (``TP_FNG_URL``)."""

    base_url: str = Field(
        default="https://api.alternative.me", description="the Fear & Greed API (or a fake)"
    )
    timeout_seconds: float = Field(default=30.0, description="HTTP timeout, seconds")
