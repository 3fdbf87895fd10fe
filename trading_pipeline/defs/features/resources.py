"""The Fear & Greed source of the features assets (their tables live where ``DataLake`` says)."""

from __future__ import annotations

import dagster as dg


class FearGreedSource(dg.ConfigurableResource):
    """alternative.me's Fear & Greed API (``TP_FNG_URL``)."""

    base_url: str = "https://api.alternative.me"
    timeout_seconds: float = 30.0
