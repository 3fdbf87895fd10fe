"""The deployment job: ``bot_assignments``, requested by the selector's and the champion's
sensors."""

from __future__ import annotations

import dagster as dg

from trading_pipeline.defs.bots.assets import DEPLOY_JOB, bot_assignments

deploy_assignments = dg.define_asset_job(
    DEPLOY_JOB,
    selection=dg.AssetSelection.assets(bot_assignments),
    description="Build assignments from the selector's decisions, validate and deploy them.",
)
