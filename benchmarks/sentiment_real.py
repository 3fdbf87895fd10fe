"""The selector with and without news sentiment, held out, on real multi-year hourly bars.

**There is no historical news archive here**, so on real bars the comparison is run twice:

1. *real news: absent* — the news features are what the live system computes when nothing was
   stored: 0.0 and 0 on every row (a constant). Any difference from "without" is the models'
   randomness around a useless constant, not information.
2. *SYNTHETIC news* — a clearly labelled generated feed (``reporter_posts``: four posts a day per
   coin, written five minutes after each 00/06/12/18 UTC bar opens, positive words after a rising
   24 hours and negative after a falling one, 30% random tone), scored by the real VADER path. It
   is causal but repeats what the bars already say: it is a test that the whole path runs on
   real bars, not evidence that sentiment helps.

Steps: the bars and the modest walk-forward discovery of ``benchmarks/selector_real.py`` (fees
and slippage on), then :func:`trading_pipeline.selector.sentiment_compare.compare_sentiment`:
the same decision rows with and without the news features, purged CV on the development rows,
one held-out period at the end, the baselines on the same rows. Nothing is registered.

Run: ``make report-sentiment`` or ``.venv/bin/python benchmarks/sentiment_real.py
[--trials 10] [--folds 6] [--every 1d]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10, help="finished trials per fold")
    ap.add_argument("--folds", type=int, default=6, help="walk-forward folds of the discovery")
    ap.add_argument("--holdout", type=float, default=0.25, help="held-out share of the rows")
    ap.add_argument("--every", default="1d", help="decision window")
    ap.add_argument("--json", action="store_true", help="print both comparisons as JSON too")
    args = ap.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings("ignore")

    import selector_real  # the same bars and discovery as make report-selector

    if not selector_real.REAL.is_dir():
        print(f"real data folder absent: {selector_real.REAL}", file=sys.stderr)
        return 2
    from trading_pipeline.bots.spec import FLEET
    from trading_pipeline.news.sources import NewsCounts, RawItem, empty_items, score_items
    from trading_pipeline.selector.sentiment_compare import compare_sentiment
    from trading_pipeline_tests.fakes.news import reporter_posts

    t0 = time.perf_counter()
    bars = selector_real.load_bars()
    print(f"bars: {', '.join(f'{k} {v.height}' for k, v in bars.items())}", flush=True)
    results = selector_real.discover(bars, trials=args.trials, folds=args.folds)
    t1 = time.perf_counter()
    posts = reporter_posts(bars, per_day=4, noise=0.3, seed=0)
    raw = [RawItem(p.published, p.id, "", "SYNTHETIC", "social", p.author, p.text) for p in posts]
    counts = NewsCounts()
    synthetic = score_items(raw, counts)
    print(
        f"SYNTHETIC feed: {len(posts)} posts, scored {counts.scored}, "
        f"mean compound {synthetic['compound'].mean():+.3f}",
        flush=True,
    )
    for label, news in (
        ("REAL bars, news ABSENT (no archive: constant 0 features)", empty_items()),
        ("REAL bars, SYNTHETIC reporter feed (labelled; carries no new information)", synthetic),
    ):
        result = compare_sentiment(
            results, bars, news, fleet=FLEET, every=args.every, holdout_fraction=args.holdout
        )
        print()
        print(f"=== {label} ===")
        print(
            f"decision rows {result.rows}; held out {result.with_news.holdout_start} .. "
            f"{result.with_news.holdout_end} ({result.with_news.n_holdout} rows); "
            f"{result.news_items} scored items; {result.rows_with_news} rows with news in the "
            f"24 h before the decision; models: without {result.without.config.label}, "
            f"with {result.with_news.config.label}"
        )
        print(result.markdown())
        print(f"with minus without, held-out net return: {result.delta_net_return:+.4f}")
        if args.json:
            print(json.dumps(result.to_json(), indent=1, default=str))
    print(f"seconds: discovery {t1 - t0:.0f}, all {time.perf_counter() - t0:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
