"""Continuous re-tuning: declarative automation over the lineage graph, off by default.

With ``TP_AUTOMATION=on`` (read once, when the code location loads) the assets get automation
conditions, so a new month of history re-materializes exactly what depends on it:

* ``features``, ``regime_periods``, ``market_correlation`` (per month): the month's partition
  once its klines land (any month, not only the latest; never before its klines exist);
* ``strategy_results`` (family × series): the studies of that series that were already tuned
  (a family never tuned is not started by automation), topping up their Optuna studies;
* ``performance_matrix``, ``top_strategies``, ``selector_training_set``, ``selector_model``
  (promoted only through its gate), ``bot_assignments``, ``paper_replay_report``, and the
  venue basis and arbitrage study: refreshed once an input changed, if materialized before;
* ``fear_greed``: once a day (02:00 UTC); a new day of the index alone does not retrain the
  selector (the next month's retraining reads it).
* ``news_sentiment``: today's partition every hour (at :15); like ``fear_greed``, new news
  alone does not retrain the selector.

Off (the default) no asset carries a condition, so Dagster creates no automation sensor.
Dagster's ``default_automation_condition_sensor`` evaluates the conditions when the switch is on
(turn it on in the UI's Automation tab, with the daemon running).
"""

from __future__ import annotations

import dagster as dg
from dagster_shared.record import replace as record_replace

A = dg.AutomationCondition

# the month's partition once its own klines are there, for any month (eager() alone only
# looks at the latest time window)
MONTHLY = A.eager().without(A.in_latest_time_window()).with_label("month_landed")

# what exists already is refreshed when an input changed since it was last requested or
# updated; nothing missing is started, nothing runs while an input is being built
REFRESH = (
    A.any_deps_updated().since_last_handled()
    & ~A.missing()
    & ~A.any_deps_in_progress()
    & ~A.in_progress()
).with_label("refresh_when_input_changed")

FEAR_GREED_CRON = "0 2 * * *"
NEWS_CRON = "15 * * * *"

MONTHLY_ASSETS = ("features", "regime_periods", "market_correlation")


def _refresh(*not_triggering: str) -> dg.AutomationCondition:
    """REFRESH, where an update of the named inputs alone does not trigger (they are still
    read): each stage waits for the one upstream stage that last changes in a new month."""
    if not not_triggering:
        return REFRESH
    return REFRESH.ignore(dg.AssetSelection.assets(*not_triggering))


def conditions() -> dict[str, dg.AutomationCondition]:
    """The automation condition of each automated asset (keys as user strings).

    In a new month the stages run one after the other: the month's regimes (after its klines)
    → the series' tuned studies → the matrix, the top and the training set → the selector →
    the assignments → the replay; each stage is triggered by the stage before it only, so
    nothing runs twice for one month.
    """
    out: dict[str, dg.AutomationCondition] = {k: MONTHLY for k in MONTHLY_ASSETS}
    out.update(
        {
            # re-tuned once the month's regimes are stored (they come after its klines)
            "strategy_results": _refresh("history/klines"),
            "performance_matrix": _refresh("regime_periods"),
            "top_strategies": _refresh(),
            # a new day of the index alone does not retrain (the next month's training reads it)
            "selector_training_set": _refresh("regime_periods", "fear_greed", "news_sentiment"),
            "selector_model": _refresh(),
            # the selector retrains whenever discovery changed: deploy after it, once
            "bot_assignments": _refresh("top_strategies"),
            "paper_replay_report": _refresh(),
            "venues/venue_basis": _refresh(),
            "venues/arbitrage_study": _refresh(),
        }
    )
    out["fear_greed"] = A.on_cron(FEAR_GREED_CRON, cron_timezone="UTC")
    out["news_sentiment"] = A.on_cron(NEWS_CRON, cron_timezone="UTC")
    return out


def with_automation(defs: dg.Definitions, enabled: bool) -> dg.Definitions:
    """``defs`` with every automated asset's condition applied (unchanged when not enabled)."""
    if not enabled:
        return defs
    table = conditions()
    # a module importing another's asset lists it twice (the same object): keep one, or the
    # mapping below would make two assets with one key
    unique = list({id(a): a for a in defs.assets or []}.values())
    defs = record_replace(defs, assets=unique)

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = table.get(spec.key.to_user_string())
        return (
            spec if condition is None else spec.replace_attributes(automation_condition=condition)
        )

    return defs.map_asset_specs(func=apply)
