"""MLflow's own server app, opening on the model-training view on a browser's first visit.

MLflow 3.17's UI picks the experiment page's view from a per-browser setting (localStorage
``mlflow.workflowType_v1``, default ``"genai"``: traces, latency, tokens) and never from the
experiment's ``mlflow.experimentKind`` tag, so a bare experiment URL opens the GenAI overview on a
first visit. This ASGI wrapper over ``mlflow.server.fastapi_app:app`` adds one script to the UI's
HTML page that sets that key to ``"machine_learning"`` when it is unset; a choice the user makes in
the sidebar afterwards is kept. Everything else passes through untouched.

``mlflow server --app-name training-view`` runs it (the ``mlflow.app`` entry point in
pyproject.toml); :func:`trading_pipeline.local_servers.mlflow_server_command` and the container's
``mlflow`` role pass that flag.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STORAGE_KEY = "mlflow.workflowType_v1"
PRESET = (
    "<script>try{if(localStorage.getItem('" + STORAGE_KEY + "')===null)"
    "localStorage.setItem('" + STORAGE_KEY + "',JSON.stringify('machine_learning'))}"
    "catch(e){}</script>"
).encode()


def preset_training_view(page: bytes) -> bytes:
    """``page`` with the preset script first in its ``<head>`` (or first of all without one)."""
    at = page.find(b"<head>")
    if at < 0:
        return PRESET + page
    at += len(b"<head>")
    return page[:at] + PRESET + page[at:]


def _header(message: Message, name: bytes) -> bytes:
    return next((v for k, v in message.get("headers", []) if k.lower() == name), b"")


class TrainingViewFirst:
    """ASGI middleware: HTML answers (200, not compressed) get :data:`PRESET`."""

    def __init__(self, inner: Callable[[], Any]) -> None:
        self._load = inner
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:  # imported in the server's worker, after MLflow set its env
            self._app = self._load()
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self._app(scope, receive, send)
            return
        held: dict[str, Any] = {"start": None, "chunks": []}

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                html = _header(message, b"content-type").startswith(b"text/html")
                if (
                    message.get("status") == 200
                    and html
                    and not _header(message, b"content-encoding")
                ):
                    held["start"] = message  # answered once the whole page is in
                    return
            elif message["type"] == "http.response.body" and held["start"] is not None:
                held["chunks"].append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = preset_training_view(b"".join(held["chunks"]))
                start = held["start"]
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await self._app(scope, receive, rewrite)


def _mlflow_app() -> Any:
    return importlib.import_module("mlflow.server.fastapi_app").app


app = TrainingViewFirst(_mlflow_app)
