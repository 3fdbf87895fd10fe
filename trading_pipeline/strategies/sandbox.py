"""Block outside input while strategy code runs: data a strategy reads from a file or the network
is invisible to truncation, so a lookahead through it could never be caught.

Inside :func:`no_outside_input` a Python audit hook refuses file opens (except the interpreter's
own modules, compiled caches and shared libraries), sockets and subprocesses, and the readers of
polars, pyarrow, DuckDB and numpy that open files natively are replaced by ones that refuse. A
strategy that needs other data declares it as columns of its bars (``StrategyFamily.columns``),
so the caller joins it and truncation reaches it. Every refusal is also written to the log the
block yields, so a strategy that swallows the error (``try: ... except Exception``) is still seen.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import sysconfig
import threading
from collections.abc import Iterator
from typing import Any


class OutsideInput(PermissionError):
    """Strategy code tried to read outside its bars (a file, the network, a subprocess)."""


_state = threading.local()
_installed = False
_install_lock = threading.Lock()
_CODE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".nbi", ".nbc", ".pth")
_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "urllib.Request",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "_thread.start_new_thread",  # a thread would run outside the block's thread-local state
    }
)
# Native readers that bypass Python's open(): (module, attribute prefixes or names).
_NATIVE_READERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("polars", ("read_", "scan_")),
    ("pyarrow.parquet", ("read_table", "ParquetFile", "ParquetDataset", "read_pandas")),
    ("pyarrow.csv", ("read_csv", "open_csv")),
    ("pyarrow.feather", ("read_table", "read_feather")),
    ("pyarrow.dataset", ("dataset",)),
    ("duckdb", ("sql", "query", "read_csv", "read_parquet", "read_json", "connect", "execute")),
    ("numpy", ("fromfile", "memmap")),
)


def _allowed_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            roots.add(sysconfig.get_paths()[key])
    if cache := os.environ.get("NUMBA_CACHE_DIR"):
        roots.add(cache)
    import zoneinfo  # time-zone data is read lazily by datetime/polars: not strategy input

    roots.update(zoneinfo.TZPATH)
    roots.add("/etc/localtime")
    return tuple(os.path.realpath(r) for r in roots if r)


def _allowed_path(path: Any) -> bool:
    if isinstance(path, int):  # an already-open descriptor (e.g. a pipe the runtime uses)
        return True
    p = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    if p.endswith(_CODE_SUFFIXES) or "__pycache__" in p or p.startswith(("/dev/", "/proc/")):
        return True
    real = os.path.realpath(p)
    return any(real == r or real.startswith(r + os.sep) for r in _ALLOWED)


_ALLOWED: tuple[str, ...] = ()
_reader_attrs: dict[str, list[str]] = {}  # module -> attributes replaced (computed once)


def _refusal(message: str) -> OutsideInput:
    """Record ``message`` in every active block's log and return the error to raise."""
    for log in getattr(_state, "logs", ()):
        log.append(message)
    return OutsideInput(message)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not getattr(_state, "active", 0):
        return
    if event == "open":
        path = args[0] if args else None
        if path is not None and not _allowed_path(path):
            raise _refusal(f"strategy code opened {os.fsdecode(path)!r}")  # type: ignore[arg-type]
    elif event in _NETWORK_EVENTS:
        raise _refusal(f"strategy code used {event}")


def _install() -> None:
    global _installed, _ALLOWED
    with _install_lock:
        if not _installed:
            _ALLOWED = _allowed_roots()
            sys.addaudithook(_hook)  # permanent for the process; inert unless a block is active
            _installed = True


def _refuser(name: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _refusal(f"strategy code called {name}")

    return refuse


@contextlib.contextmanager
def _patched_readers() -> Iterator[None]:
    saved: list[tuple[Any, str, Any]] = []
    try:
        for module_name, names in _NATIVE_READERS:
            module = sys.modules.get(module_name)
            if module is None and module_name in ("polars", "numpy"):
                module = importlib.import_module(module_name)
            if module is None:  # not loaded yet: patched if a later block finds it loaded
                continue
            if module_name not in _reader_attrs:
                _reader_attrs[module_name] = [
                    attr
                    for attr in dir(module)
                    if attr in names or any(attr.startswith(n) and n.endswith("_") for n in names)
                ]
            for attr in _reader_attrs[module_name]:
                if hasattr(module, attr):
                    saved.append((module, attr, getattr(module, attr)))
                    setattr(module, attr, _refuser(f"{module_name}.{attr}"))
        yield
    finally:
        for module, attr, value in reversed(saved):
            setattr(module, attr, value)


@contextlib.contextmanager
def no_outside_input() -> Iterator[list[str]]:
    """Within the block, file/network/subprocess access raises :class:`OutsideInput`; the block
    yields a list that collects every refusal (also those the code inside caught). Nested blocks
    are cheap: only the outermost one replaces the native readers."""
    _install()
    depth = getattr(_state, "active", 0)
    log: list[str] = []
    logs = getattr(_state, "logs", [])
    _state.logs = [*logs, log]
    _state.active = depth + 1
    try:
        if depth:
            yield log
        else:
            with _patched_readers():
                yield log
    finally:
        _state.active = depth
        _state.logs = logs
