"""trading-pipeline: market history to honestly tested strategies to bots."""

__version__ = "0.1.0"
