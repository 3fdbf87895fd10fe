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


class NewsSource(dg.ConfigurableResource):
    """Where news and social posts are read (``TP_NEWS_FEEDS``, ``TP_SOCIAL_FILES``)."""

    feeds: list[str] = Field(
        default_factory=list, description="RSS/Atom feed URLs or files (TP_NEWS_FEEDS)"
    )
    social_files: list[str] = Field(
        default_factory=list,
        description="exported social posts, JSON lines or CSV, URLs or files (TP_SOCIAL_FILES)",
    )
    timeout_seconds: float = Field(default=20.0, description="HTTP timeout per request, seconds")
    attempts: int = Field(default=3, description="tries per URL (transport errors, 429, 5xx)")
