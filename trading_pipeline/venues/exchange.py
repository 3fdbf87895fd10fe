"""Build a ccxt exchange for a venue, optionally with every API URL pointed at another host.

Tests and demos point ccxt at a local server that speaks the venue's REST format
(the test kit's ``trading_pipeline_tests.fakes.binance``), so the URL rewrite keeps each URL's path and swaps
only the scheme and host. Spot only: market loading must not touch futures, margin or currency
endpoints that a spot bot never needs (and that a fake does not serve).

Keys are passed in by the caller (who reads ``TP_*`` through settings). ccxt logs request
headers, API key included, at DEBUG; the exchange is given a logger that redacts the key and the
secret before anything reaches the logging system.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ccxt

from trading_pipeline.errors import UserInputError
from trading_pipeline.retrying import RetryPolicy as RetryPolicy  # re-exported
from trading_pipeline.retrying import retry_after_from
from trading_pipeline.venues.names import VENUES as VENUES  # re-exported

REDACTED = "***"
# a signed request's bearer token (Coinbase's per-request JWT) is a credential too
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact_tokens(text: str) -> str:
    """``text`` with every ``Bearer <token>`` replaced by ``Bearer ***``."""
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


# venues: six tries, the wait doubling from 1 s up to 60 s (plus jitter), or what the venue's
# Retry-After asks for
VENUE_RETRY = RetryPolicy(attempts=6, base_s=1.0, max_s=60.0, jitter_s=0.5)


def retry_after_hint(exchange: Any) -> Callable[[BaseException], float | None]:
    """The venue's ``Retry-After`` for a rate-limit error (ccxt keeps the last response's
    headers); ``None`` for any other error, whose headers would be a previous response's."""

    def hint(exc: BaseException) -> float | None:
        if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
            return retry_after_from(getattr(exchange, "last_response_headers", None))
        return None

    return hint


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}

log = logging.getLogger(__name__)


class RedactingLogger:
    """A stand-in for ccxt's ``exchange.logger`` that formats each message, replaces every
    secret in it with ``***`` and forwards it to a real logger.

    ccxt calls ``logger.debug(fmt, *args)`` with the request headers in ``args``; formatting first
    means no record ever carries the key, not even in ``record.args``.
    """

    def __init__(self, target: logging.Logger, secrets: tuple[str, ...]) -> None:
        self._target = target
        self._secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, REDACTED)
        return redact_tokens(text)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self._target.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(x) for x in (msg, *args))
        kwargs.pop("exc_info", None)  # a traceback could quote locals holding the key
        self._target.log(level, "%s", self.redact(text), **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def isEnabledFor(self, level: int) -> bool:
        return self._target.isEnabledFor(level)


def _check_venue(venue: str) -> None:
    if venue not in VENUES:
        raise UserInputError(f"unknown venue {venue!r}; known: {', '.join(VENUES)}")


def _rewrite(url: str, base: tuple[str, str, str]) -> str:
    scheme, netloc, prefix = base
    parts = urlsplit(url)
    return urlunsplit((scheme, netloc, prefix + parts.path, parts.query, parts.fragment))


def rewrite_urls(api: Any, base_url: str) -> Any:
    """``api`` (ccxt's ``urls['api']``: a string or nested dicts of strings) with the scheme and
    host of every URL replaced by ``base_url``'s, paths kept (a path in ``base_url`` is prefixed)."""
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise UserInputError(f"venue URL must look like http://host:port, got {base_url!r}")
    base = (parts.scheme, parts.netloc, parts.path.rstrip("/"))

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return _rewrite(node, base)
        if isinstance(node, Mapping):
            return {k: walk(v) for k, v in node.items()}
        return node

    return walk(api)


def make_exchange(
    venue: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    secret: str | None = None,
    timeout_ms: int = 10000,
    **options: Any,
) -> ccxt.Exchange:
    """A synchronous ccxt exchange for ``venue`` ("binance", "binanceus" or "coinbase").

    ``base_url`` points every API URL at another host (a local fake or a mirror). Market loading
    is spot only; rate limiting is on. Extra ``options`` are merged into ``exchange.options``.
    """
    _check_venue(venue)
    cls = getattr(ccxt, venue)
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_ms)}
    if api_key:
        config["apiKey"] = api_key
    if secret:
        config["secret"] = secret
    exchange: ccxt.Exchange = cls(config)
    if venue in {"binance", "binanceus"}:
        exchange.options["fetchMarkets"] = {
            **(exchange.options.get("fetchMarkets") or {}),
            "types": ["spot"],
        }
        exchange.options["fetchCurrencies"] = False
        exchange.options["fetchMargins"] = False
        exchange.options["defaultType"] = "spot"
    if venue == "coinbase":  # balances from Advanced Trade's accounts (ccxt defaults to v2's)
        exchange.options["fetchBalance"] = "v3PrivateGetBrokerageAccounts"
    exchange.options.update(options)
    if base_url:
        exchange.urls["api"] = rewrite_urls(exchange.urls["api"], base_url)
        if urlsplit(base_url).hostname in _LOOPBACK:
            # a local server: never route it through an HTTP(S)_PROXY from the environment
            exchange.session.trust_env = False
    exchange.logger = RedactingLogger(  # type: ignore[assignment]
        logging.getLogger(f"{__name__}.ccxt"), (api_key or "", secret or "")
    )
    return exchange
