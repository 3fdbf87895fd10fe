"""One typed settings object, read from the environment (``TP_*``).

Only this module and the Dagster resources read the environment; everything else takes
a :class:`Settings` (or the plain values in it) as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from trading_pipeline.history.layout import HistoryLayout

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
# where a person opens the UIs: links in Dagster metadata and MLflow tags are built on these
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"
DEFAULT_DAGSTER_UI_URL = "http://127.0.0.1:3000"


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
    fleet_file: Path | None = None  # TP_FLEET_FILE; None = the fleet shipped in the package
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL  # TP_MLFLOW_UI_URL
    dagster_ui_url: str = DEFAULT_DAGSTER_UI_URL  # TP_DAGSTER_UI_URL
    dagster_home: Path | None = None  # DAGSTER_HOME: the instance runless events are recorded in
    automation: bool = False  # TP_AUTOMATION=on: declarative re-materialization (re-tuning)
    news_feeds: tuple[str, ...] = ()  # TP_NEWS_FEEDS: RSS/Atom feed URLs or files
    social_files: tuple[str, ...] = ()  # TP_SOCIAL_FILES: exported posts (JSON lines / CSV)
    # TP_FLEET_SERIES=on (default): the history series are the universe AND every bot's
    # (symbol, interval) from the fleet in force; off: the configured universe only
    fleet_series: bool = True

    @property
    def history_dir(self) -> Path:
        return self.history_dir_override or self.data_dir / "history"

    @property
    def bots_dir(self) -> Path:
        return self.bots_dir_override or self.data_dir / "bots"

    @property
    def layout(self) -> DataLayout:
        """Where every artifact lives for these settings."""
        return DataLayout(
            data_dir=self.data_dir,
            history_dir=self.history_dir,
            bots_dir=self.bots_dir,
            mlflow_tracking_uri_override=self.mlflow_tracking_uri,
            optuna_storage_override=self.optuna_storage,
        )

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
        universe = _split(env.get("TP_UNIVERSE", ""))
        if env.get("TP_UNIVERSE", "").strip() and not universe:
            raise SettingsError(f"TP_UNIVERSE names no symbol: {env['TP_UNIVERSE']!r}")
        automation = (env.get("TP_AUTOMATION") or "off").strip().lower()
        if automation not in ("on", "off"):
            raise SettingsError(f"TP_AUTOMATION must be on or off, got {env['TP_AUTOMATION']!r}")
        fleet_series = (env.get("TP_FLEET_SERIES") or "on").strip().lower()
        if fleet_series not in ("on", "off"):
            raise SettingsError(
                f"TP_FLEET_SERIES must be on or off, got {env['TP_FLEET_SERIES']!r}"
            )
        return cls(
            data_dir=data_dir,
            history_dir_override=Path(history) if history else None,
            bots_dir_override=Path(bots) if bots else None,
            vision_url=(env.get("TP_VISION_URL") or DEFAULT_VISION_URL).rstrip("/"),
            listing_url=(env.get("TP_VISION_LISTING_URL") or DEFAULT_LISTING_URL).rstrip("/"),
            fng_url=(env.get("TP_FNG_URL") or DEFAULT_FNG_URL).rstrip("/"),
            universe=universe or DEFAULT_SYMBOLS,
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
            fleet_file=fleet_file_from_env(env),
            mlflow_ui_url=_ui_url(env, "TP_MLFLOW_UI_URL", DEFAULT_MLFLOW_UI_URL),
            dagster_ui_url=_ui_url(env, "TP_DAGSTER_UI_URL", DEFAULT_DAGSTER_UI_URL),
            dagster_home=Path(env["DAGSTER_HOME"]) if env.get("DAGSTER_HOME") else None,
            automation=automation == "on",
            news_feeds=text_sources(env, "TP_NEWS_FEEDS"),
            social_files=text_sources(env, "TP_SOCIAL_FILES"),
            fleet_series=fleet_series == "on",
        )


def _ui_url(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) base URL from ``name`` (trailing slash dropped), else ``default``."""
    value = (env.get(name) or "").strip().rstrip("/")
    if not value:
        return default
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http(s):// URL, got {value!r}")
    return value


def text_sources(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated http(s) URLs or file paths (``file://`` allowed) from ``name``."""
    entries = _split(env.get(name, ""))
    for entry in entries:
        if "://" in entry and not entry.startswith(("http://", "https://", "file://")):
            raise SettingsError(f"{name} entries must be http(s) URLs or file paths, got {entry!r}")
    return entries


def fleet_file_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """``TP_FLEET_FILE`` (the fleet's TOML file), or None for the fleet shipped in the package."""
    env = os.environ if env is None else env
    value = (env.get("TP_FLEET_FILE") or "").strip()
    return Path(value).expanduser() if value else None


LEDGER_FILE = "ledger.sqlite"


@dataclass(frozen=True)
class BotsLayout:
    """The paths under the bots dir (a runner or replay that only knows its bots dir uses it)."""

    root: Path

    def bot_dir(self, bot: str) -> Path:
        return self.root / bot

    def assignment_path(self, bot: str) -> Path:
        return self.bot_dir(bot) / "assignment.json"

    def bot_mode_dir(self, bot: str, mode: str) -> Path:
        """``<bots>/<bot>/<paper|live>``: the runner's ledger and lock live here."""
        return self.bot_dir(bot) / mode

    def ledger_path(self, bot: str, mode: str) -> Path:
        return self.bot_mode_dir(bot, mode) / LEDGER_FILE

    @property
    def halt_path(self) -> Path:
        return self.root / "HALT"

    @property
    def replays_dir(self) -> Path:
        return self.root / "replays"

    def replay_dir(self, start: date, end: date) -> Path:
        """A fleet replay's folder: ``replays/YYYYMMDD-YYYYMMDD`` (both days inclusive)."""
        return self.replays_dir / f"{start:%Y%m%d}-{end:%Y%m%d}"

    def bot_replay_dir(self, bot: str, start: date, end: date) -> Path:
        return self.bot_dir(bot) / "replay" / f"{start:%Y%m%d}-{end:%Y%m%d}"


@dataclass(frozen=True)
class DataLayout:
    """Every artifact's path under the data dir, and the MLflow/Optuna URIs: the one place.

    Build it with :meth:`Settings.layout` (or :func:`resolve_layout` from command-line flags),
    never by joining folder names elsewhere. Methods return paths; none creates anything.
    """

    data_dir: Path
    history_dir: Path
    bots_dir: Path
    mlflow_tracking_uri_override: str | None = None
    optuna_storage_override: str | None = None

    @classmethod
    def under(cls, data_dir: str | Path) -> DataLayout:
        """The default layout under ``data_dir`` (history and bots inside it, embedded
        MLflow and Optuna); no environment is read."""
        return Settings(data_dir=Path(data_dir)).layout

    @property
    def history(self) -> HistoryLayout:
        return HistoryLayout(self.history_dir)

    # discovery: studies' summaries and the ranking
    @property
    def discovery_dir(self) -> Path:
        return self.data_dir / "discovery"

    @property
    def audits_dir(self) -> Path:
        """Lookahead audits, one file per family and code fingerprint (the tuning gate's cache)."""
        return self.discovery_dir / "audits"

    @property
    def top_strategies_path(self) -> Path:
        return self.discovery_dir / "top_strategies.json"

    @property
    def performance_matrix_path(self) -> Path:
        return self.discovery_dir / "performance_matrix.parquet"

    @property
    def backtest_results_dir(self) -> Path:
        """Trade lists exported by ``backtest --export trades`` (freqtrade's backtest_results)."""
        return self.data_dir / "backtest_results"

    # features and the Dagster IO manager's tables
    @property
    def features_dir(self) -> Path:
        return self.data_dir / "features"

    def feature_path(self, table: str, *parts: str) -> Path:
        """``features/<table>/<part>/…/data.parquet``: one derived table's file."""
        return self.features_dir.joinpath(table, *parts, "data.parquet")

    @property
    def tables_dir(self) -> Path:
        return self.data_dir / "tables"

    @property
    def venue_basis_dir(self) -> Path:
        return self.data_dir / "venues" / "basis"

    # news and social sentiment: scored items and their hourly/daily aggregates, per UTC day
    @property
    def news_dir(self) -> Path:
        return self.data_dir / "news"

    def news_path(self, table: str, day: date) -> Path:
        """``news/<items|hourly|daily>/day=YYYY-MM-DD/data.parquet``."""
        return self.news_dir / table / f"day={day.isoformat()}" / "data.parquet"

    # the selector
    @property
    def selector_dir(self) -> Path:
        return self.data_dir / "selector"

    @property
    def decisions_path(self) -> Path:
        return self.selector_dir / "decisions.sqlite"

    # bots
    @property
    def bots(self) -> BotsLayout:
        return BotsLayout(self.bots_dir)

    def bot_dir(self, bot: str) -> Path:
        return self.bots.bot_dir(bot)

    def assignment_path(self, bot: str) -> Path:
        return self.bots.assignment_path(bot)

    def bot_mode_dir(self, bot: str, mode: str) -> Path:
        """``<bots>/<bot>/<paper|live>``: the runner's ledger and lock live here."""
        return self.bots.bot_mode_dir(bot, mode)

    def ledger_path(self, bot: str, mode: str) -> Path:
        return self.bots.ledger_path(bot, mode)

    @property
    def halt_path(self) -> Path:
        return self.bots.halt_path

    @property
    def replays_dir(self) -> Path:
        return self.bots.replays_dir

    def replay_dir(self, start: date, end: date) -> Path:
        """A fleet replay's folder: ``replays/YYYYMMDD-YYYYMMDD`` (both days inclusive)."""
        return self.bots.replay_dir(start, end)

    def bot_replay_dir(self, bot: str, start: date, end: date) -> Path:
        return self.bots.bot_replay_dir(bot, start, end)

    # MLflow and Optuna
    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def mlflow_db_path(self) -> Path:
        return self.mlflow_dir / "mlflow.db"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def mlflow_tracking_uri(self) -> str:
        """``TP_MLFLOW_TRACKING_URI`` when set, else the embedded ``sqlite:///<abs>/mlflow.db``."""
        if self.mlflow_tracking_uri_override:
            return self.mlflow_tracking_uri_override
        return f"sqlite:///{self.mlflow_db_path.resolve()}"

    def ensure_mlflow_dir(self) -> str:
        """:attr:`mlflow_tracking_uri`, creating the embedded store's folder if it is used."""
        if self.uses_embedded_mlflow:
            self.mlflow_dir.mkdir(parents=True, exist_ok=True)
        return self.mlflow_tracking_uri

    @property
    def uses_embedded_mlflow(self) -> bool:
        return not self.mlflow_tracking_uri_override

    @property
    def optuna_journal_path(self) -> Path:
        return self.data_dir / "optuna" / "studies.log"

    @property
    def optuna_storage_url(self) -> str:
        """``TP_OPTUNA_STORAGE`` when set, else ``journal:<abs>/optuna/studies.log``."""
        if self.optuna_storage_override:
            return self.optuna_storage_override
        return f"journal:{self.optuna_journal_path.resolve()}"

    def table(self) -> list[tuple[str, str]]:
        """(name, path or URI) for every artifact, for ``--help`` text and ``data-layout``."""
        return [
            ("data", str(self.data_dir)),
            ("history", str(self.history_dir)),
            ("manifest", str(self.history.manifest_path)),
            ("features", str(self.features_dir)),
            ("news", str(self.news_dir)),
            ("discovery", str(self.discovery_dir)),
            ("top strategies", str(self.top_strategies_path)),
            ("selector", str(self.selector_dir)),
            ("decisions", str(self.decisions_path)),
            ("bots", str(self.bots_dir)),
            ("replays", str(self.replays_dir)),
            ("mlflow", self.mlflow_tracking_uri),
            ("mlflow artifacts", str(self.mlflow_artifacts_dir)),
            ("optuna", self.optuna_storage_url),
        ]


def resolve_settings(
    *,
    data_dir: Path | str | None = None,
    history_dir: Path | str | None = None,
    bots_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the environment with command-line flags on top: flag > env > default.

    The one precedence rule for every verb and resource:

    * ``--history-dir`` (``--bots-dir``) beats everything for that folder;
    * ``--data-dir`` beats ``TP_DATA_DIR`` and, because it names where *everything* goes, also
      beats ``TP_HISTORY_DIR``/``TP_BOTS_DIR`` (history and bots go under it);
    * otherwise ``TP_HISTORY_DIR``/``TP_BOTS_DIR``, then ``$TP_DATA_DIR/history``/``bots``,
      then ``./data/…``.
    """
    settings = Settings.from_env(env)
    if data_dir is not None:
        settings = replace(
            settings, data_dir=Path(data_dir), history_dir_override=None, bots_dir_override=None
        )
    if history_dir is not None:
        settings = replace(settings, history_dir_override=Path(history_dir))
    if bots_dir is not None:
        settings = replace(settings, bots_dir_override=Path(bots_dir))
    return settings


def resolve_layout(
    *,
    data_dir: Path | str | None = None,
    history_dir: Path | str | None = None,
    bots_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> DataLayout:
    """:func:`resolve_settings`'s layout."""
    return resolve_settings(
        data_dir=data_dir, history_dir=history_dir, bots_dir=bots_dir, env=env
    ).layout
