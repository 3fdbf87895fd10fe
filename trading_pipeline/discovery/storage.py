"""Where Optuna studies live: a journal file under the data dir by default, or a database URL.

* no URL → ``JournalStorage(JournalFileBackend(<data dir>/optuna/studies.log))``: embedded,
  safe for several processes on one host, ~6 ms a trial here (SQLite is ~45 ms).
* ``sqlite:///…`` or ``postgresql://…`` → ``RDBStorage``: PostgreSQL lets many
  ``tune-worker`` processes on many hosts share one study.
* ``journal:PATH`` → a journal file at PATH.
* ``redis://HOST:PORT/DB`` → Optuna's journal on Redis (``JournalRedisBackend``): the
  scale-out storage for tuning workers on many hosts (each worker replays only the entries it
  has not seen; ``make bench-workers`` compares the kinds).

Finished trials computed elsewhere (a batch run in memory) are written with :func:`add_trials`:
on a journal file all of them go in one append (one lock, one ``fsync``) instead of one per
trial; the journal numbers them as it replays the file, so several workers sharing one file
still get unique, consecutive numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trading_pipeline.errors import EnvironmentFault, UserInputError
from trading_pipeline.settings import DataLayout

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.storages.journal import BaseJournalBackend


def default_storage_url(data_dir: str | Path) -> str:
    """The embedded journal under ``data_dir`` (``DataLayout``'s rule)."""
    return DataLayout.under(data_dir).optuna_storage_url


def check_storage_url(url: str) -> str:
    """``url`` when it names a storage kind this project opens, else the one-line error
    :func:`open_storage` would give (checked before any work, opening nothing)."""
    kinds = ("journal:", "sqlite:///", "postgresql://", "postgresql+psycopg2://", "redis://")
    if url.startswith(kinds):
        return url
    raise UserInputError(
        f"unsupported study storage {url!r}: use journal:PATH, sqlite:///PATH, postgresql://… "
        "or redis://…"
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
        return optuna.storages.journal.JournalStorage(BufferedJournal(backend))  # type: ignore[arg-type]
    if url.startswith("redis://"):
        return _open_redis(url)
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


def _open_redis(url: str) -> BaseStorage:
    """Optuna's journal on the Redis server at ``url`` (answering before any work)."""
    import warnings

    import optuna.storages.journal
    import redis

    try:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.1
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            backend = optuna.storages.journal.JournalRedisBackend(url)
        backend._redis.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise EnvironmentFault(f"cannot open study storage {redact(url)}: {exc}") from exc
    return optuna.storages.journal.JournalStorage(BufferedJournal(backend))  # type: ignore[arg-type]


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


CREATE_TRIAL = 4  # optuna.storages.journal._storage.JournalOperation.CREATE_TRIAL


class BufferedJournal:
    """A journal backend (Optuna's ``BaseJournalBackend`` protocol) that passes everything to
    ``inner`` except, in the thread that opened it, while :meth:`buffered` is open: then the
    log entries that thread appends are kept and written together, in one ``append_logs`` (one
    lock, one write, one ``fsync``), when the block ends, and its reads return nothing new until
    then (the storage catches up with every entry, its own and other workers', on the next
    read). Other threads and processes read and write the file as usual meanwhile.

    Only writes that need no answer from the storage may be buffered: finished trials added
    from a template (:func:`add_trials`), never ``ask``/``tell`` or study creation.
    """

    def __init__(self, inner: BaseJournalBackend) -> None:
        self.inner = inner
        self.pending: dict[int, list[dict[str, Any]]] = {}  # thread id → entries held back
        # Optuna's journal reads back the id of the last trial this storage object created
        # right after creating one, and knows none before its first: the first trial created
        # through a storage object is written (and read back) at once, not buffered
        self.created_trial = False

    def __getstate__(self) -> dict[str, Any]:
        return {"inner": self.inner, "pending": {}, "created_trial": False}

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        if threading.get_ident() in self.pending:
            return ()
        return self.inner.read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        held = self.pending.get(threading.get_ident())
        if held is not None:
            held.extend(logs)
        else:
            self.inner.append_logs(logs)
            self.created_trial = self.created_trial or any(
                log.get("op_code") == CREATE_TRIAL for log in logs
            )

    @contextmanager
    def buffered(self) -> Iterator[None]:
        """Collect the entries this thread appends inside the block; write them at once when
        it ends (also when it ends by an exception: what was added before stays added)."""
        me = threading.get_ident()
        if me in self.pending:  # nested: the outer block writes
            yield
            return
        self.pending[me] = []
        try:
            yield
        finally:
            logs = self.pending.pop(me)
            if logs:
                self.inner.append_logs(logs)


def add_trials(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
    """``study.add_trials(trials)``, in one journal append when the study lives in a journal
    opened by :func:`open_storage` (else one write per trial, as Optuna does)."""
    if not trials:
        return
    backend = getattr(study._storage, "_backend", None)
    if not isinstance(backend, BufferedJournal):
        study.add_trials(trials)
        return
    if not backend.created_trial:
        study.add_trial(trials[0])
        trials = trials[1:]
    with backend.buffered():
        study.add_trials(trials)
