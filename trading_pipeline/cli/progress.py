"""Progress bars for long verbs, on stderr, only where a person watches.

Shown when stderr is a terminal (or ``TP_PROGRESS=1``); never with ``TP_PROGRESS=0``. stdout
stays clean for ``--json`` and pipes. The core reports ``(done, total)`` through a plain
callback; this module turns it into a rich progress bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[float, float], None]


def wanted() -> bool:
    flag = os.environ.get("TP_PROGRESS", "").strip().lower()
    if flag in {"0", "false", "no", "off"}:
        return False
    return flag in {"1", "true", "yes", "on"} or sys.stderr.isatty()


@contextmanager
def progress_bar(label: str) -> Iterator[Advance | None]:
    """A callback ``advance(done, total)`` drawing a bar on stderr, or None when not wanted."""
    if not wanted():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, force_terminal=sys.stderr.isatty() or None)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
