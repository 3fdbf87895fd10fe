"""trading-pipeline: market history to honestly tested strategies to bots."""

import os
import tempfile
from pathlib import Path

__version__ = "0.1.0"


def _writable_caches() -> None:
    """numba caches compiled kernels beside their source (``__pycache__``); installed read-only
    (a container's venv owned by root, run as uid 10001) it raises "cannot cache function … no
    locator available" on import. Then, unless the user chose a folder, the cache goes to a
    per-user folder under the temp dir. The same for matplotlib's config cache."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    tmp = Path(tempfile.gettempdir())
    if "NUMBA_CACHE_DIR" not in os.environ and not os.access(Path(__file__).parent, os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(tmp / f"trading-pipeline-numba-{uid}")
    home = Path(os.environ.get("HOME") or "/nonexistent")
    if "MPLCONFIGDIR" not in os.environ and not os.access(home, os.W_OK):
        os.environ["MPLCONFIGDIR"] = str(tmp / f"trading-pipeline-matplotlib-{uid}")


_writable_caches()
