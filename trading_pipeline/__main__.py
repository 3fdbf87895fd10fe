"""``python -m trading_pipeline …``: the same command as ``trading-pipeline``."""

import sys

from trading_pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
