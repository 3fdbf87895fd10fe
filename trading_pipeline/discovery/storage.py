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

from trading_pipeline.errors import EnvironmentFault, UserInputError
from trading_pipeline.settings import DataLayout

if TYPE_CHECKING:
    from optuna.storages import BaseStorage


def default_storage_url(data_dir: str | Path) -> str:
    """The embedded journal under ``data_dir`` (``DataLayout``'s rule)."""
    return DataLayout.under(data_dir).optuna_storage_url


def check_storage_url(url: str) -> str:
    """``url`` when it names a storage kind this project opens, else the one-line error
    :func:`open_storage` would give (checked before any work, opening nothing)."""
    if url.startswith(("journal:", "sqlite:///", "postgresql://", "postgresql+psycopg2://")):
        return url
    raise UserInputError(
        f"unsupported study storage {url!r}: use journal:PATH, sqlite:///PATH or postgresql://…"
    )


def open_storage(url: str | None, *, data_dir: str | Path, create: bool = True) -> BaseStorage:
    """An Optuna storage for ``url`` (``None`` → the embedded journal file under ``data_dir``).

    One that cannot be reached or created is an :class:`EnvironmentFault` (one line, before any
    work); with ``create=False`` a journal or SQLite file that does not exist is a user error
    and nothing is created.
    """
    import optuna
    import optuna.storages.journal
    import sqlalchemy.exc

    url = check_storage_url(url or default_storage_url(data_dir))
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        _check_file(path, url, create=create)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
        except OSError as exc:
            raise EnvironmentFault(
                f"cannot open study storage {url}: {exc.strerror or exc}"
            ) from exc
        return optuna.storages.journal.JournalStorage(backend)
    # the rest is a database URL (check_storage_url let nothing else through)
    if url.startswith("sqlite:///") and not create:
        _check_file(Path(url.removeprefix("sqlite:///")), url, create=False)
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the project ships psycopg2
    engine_url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    try:
        return optuna.storages.RDBStorage(engine_url)
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        why = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        raise EnvironmentFault(f"cannot open study storage {redact(url)}: {why}") from exc


def _check_file(path: Path, url: str, *, create: bool) -> None:
    """With ``create=False`` a storage file that does not exist holds no study: a user error,
    and the file is not created."""
    if create or path.is_file():
        return
    raise UserInputError(f"no study storage at {path}; create a study with `tune`")


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and MLflow tags)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
