"""optuna-dashboard over the project's study storage, read-only unless asked otherwise.

The dashboard can write (notes, human feedback, deleting a study). Served read-only, every
request that is not GET/HEAD/OPTIONS is refused with 403 before it reaches the dashboard, so a
click cannot change or delete a study that discovery and the selector depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from optuna.storages import BaseStorage

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def read_only(app: WSGIApp) -> WSGIApp:
    """``app`` refusing every method that could change something."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() not in SAFE_METHODS:
            body = b'{"reason": "this dashboard is read-only (trading-pipeline studies dashboard)"}'
            start_response(
                "403 Forbidden",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return guarded


def make_dashboard_server(
    storage: BaseStorage, *, host: str = "127.0.0.1", port: int = 8080, writable: bool = False
) -> WSGIServer:
    """A WSGI server (not yet serving) for optuna-dashboard over ``storage``."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from optuna_dashboard import wsgi  # lazy: optuna-dashboard pulls in bottle and more

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    app = wsgi(storage)
    return make_server(host, port, app if writable else read_only(app), handler_class=Quiet)
