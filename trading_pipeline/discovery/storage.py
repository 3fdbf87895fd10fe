"""Where Optuna studies live: a journal file under the data dir by default, or a database URL.

* no URL → ``JournalStorage(JournalFileBackend(<data dir>/optuna/studies.log))``: embedded,
  safe for several processes on one host, ~6 ms a trial here (SQLite is ~45 ms).
* ``sqlite:///…`` or ``postgresql://…`` → ``RDBStorage``: PostgreSQL lets many
  ``tune-worker`` processes on many hosts share one study.
* ``journal:PATH`` → a journal file at PATH.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trading_pipeline.errors import UserInputError
from trading_pipeline.settings import DataLayout

if TYPE_CHECKING:
    from optuna.storages import BaseStorage


def default_storage_url(data_dir: str | Path) -> str:
    """The embedded journal under ``data_dir`` (``DataLayout``'s rule)."""
    return DataLayout.under(data_dir).optuna_storage_url


def open_storage(url: str | None, *, data_dir: str | Path) -> BaseStorage:
    """An Optuna storage for ``url`` (``None`` → the embedded journal file under ``data_dir``)."""
    import optuna
    import optuna.storages.journal

    url = url or default_storage_url(data_dir)
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.journal.JournalStorage(backend)
    if url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg2://")):
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the project ships psycopg2
        url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
        return optuna.storages.RDBStorage(url)
    raise UserInputError(
        f"unsupported study storage {url!r}: use journal:PATH, sqlite:///PATH or postgresql://…"
    )


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and MLflow tags)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
