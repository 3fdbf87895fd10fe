"""Recording what a verb wrote in the Dagster instance of ``DAGSTER_HOME`` (when there is one).

``import freqtrade`` and ``venue fetch`` write months of the store outside any Dagster run; the
months are reported to the instance as runless materializations (``defs.history.runless``) so
the Partitions view shows them. Without ``DAGSTER_HOME`` nothing is recorded; a failure to
record is a warning on stderr: the files are written and stay.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trading_pipeline.settings import Settings


def record_in_instance(settings: Settings, report: Callable[[Any], Any]) -> None:
    """Open the instance of ``DAGSTER_HOME`` and run ``report(instance)`` (it returns a
    ``Reported``); say in one line what was recorded, or why nothing was."""
    home = settings.dagster_home
    if home is None:
        return
    if not Path(home).is_dir():
        print(
            f"DAGSTER_HOME {home} is not a folder: months not recorded in Dagster", file=sys.stderr
        )
        return
    # lazy: dagster takes seconds to import; only loaded when an instance is there to record in
    from trading_pipeline.defs.history.runless import open_instance

    try:
        with open_instance(Path(home)) as instance:
            done = report(instance)
    except Exception as exc:  # the store is written; recording it is secondary
        print(
            f"warning: months not recorded in the Dagster instance at {home}: {exc}",
            file=sys.stderr,
        )
        return
    print(done.line(Path(home)))
