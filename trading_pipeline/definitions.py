"""The code location: everything under ``defs/`` is discovered and loaded; with
``TP_AUTOMATION=on`` the assets also get their automation conditions (``defs/automation.py``)."""

from pathlib import Path

import dagster as dg

from trading_pipeline.defs.automation import with_automation
from trading_pipeline.settings import Settings


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return with_automation(loaded, Settings.from_env().automation)
