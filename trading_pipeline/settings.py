"""One typed settings object, read from the environment (``TP_*``).

Only this module and the Dagster resources read the environment; everything else takes
a :class:`Settings` (or the plain values in it) as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_VISION_URL = "https://data.binance.vision"
DEFAULT_LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
DEFAULT_FNG_URL = "https://api.alternative.me"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
DEFAULT_INTERVAL = "1h"
# Per-venue REST base URLs (ccxt's hosts are rewritten to them; unset = the venue's real URLs).
VENUE_URL_ENV = {
    "binance": "TP_BINANCE_URL",
    "binanceus": "TP_BINANCEUS_URL",
    "coinbase": "TP_COINBASE_URL",
}
DEFAULT_START = "2019-01-01"


class SettingsError(ValueError):
    """A setting from the environment has a value that cannot be used."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


@dataclass(frozen=True)
class Settings:
    """Where data lives and which remote services the pipeline talks to."""

    data_dir: Path = Path("data")
    history_dir_override: Path | None = None
    bots_dir_override: Path | None = None
    vision_url: str = DEFAULT_VISION_URL
    listing_url: str = DEFAULT_LISTING_URL
    fng_url: str = DEFAULT_FNG_URL
    universe: tuple[str, ...] = DEFAULT_SYMBOLS
    market: str = "spot"
    interval: str = DEFAULT_INTERVAL
    start: str = DEFAULT_START
    concurrency: int = 4
    mlflow_tracking_uri: str | None = None
    optuna_storage: str | None = None
    venue_urls: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def history_dir(self) -> Path:
        return self.history_dir_override or self.data_dir / "history"

    @property
    def bots_dir(self) -> Path:
        return self.bots_dir_override or self.data_dir / "bots"

    def venue_url(self, venue: str) -> str | None:
        """The REST base URL override for ``venue`` (``None``: ccxt's real URLs)."""
        return self.venue_urls.get(venue)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``TP_*`` variables; unset ones keep their defaults."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("TP_DATA_DIR") or "data")
        history = env.get("TP_HISTORY_DIR")
        bots = env.get("TP_BOTS_DIR")
        try:
            concurrency = int(env.get("TP_CONCURRENCY", "4"))
        except ValueError as exc:
            raise SettingsError(
                f"TP_CONCURRENCY must be an integer, got {env['TP_CONCURRENCY']!r}"
            ) from exc
        if concurrency < 1:
            raise SettingsError(f"TP_CONCURRENCY must be at least 1, got {concurrency}")
        return cls(
            data_dir=data_dir,
            history_dir_override=Path(history) if history else None,
            bots_dir_override=Path(bots) if bots else None,
            vision_url=(env.get("TP_VISION_URL") or DEFAULT_VISION_URL).rstrip("/"),
            listing_url=(env.get("TP_VISION_LISTING_URL") or DEFAULT_LISTING_URL).rstrip("/"),
            fng_url=(env.get("TP_FNG_URL") or DEFAULT_FNG_URL).rstrip("/"),
            universe=_split(env.get("TP_UNIVERSE", "")) or DEFAULT_SYMBOLS,
            market=env.get("TP_MARKET") or "spot",
            interval=env.get("TP_INTERVAL") or DEFAULT_INTERVAL,
            start=env.get("TP_START") or DEFAULT_START,
            concurrency=concurrency,
            mlflow_tracking_uri=env.get("TP_MLFLOW_TRACKING_URI") or None,
            optuna_storage=env.get("TP_OPTUNA_STORAGE") or None,
            venue_urls={
                venue: url.strip().rstrip("/")
                for venue, var in VENUE_URL_ENV.items()
                if (url := env.get(var, "")).strip()
            },
        )
