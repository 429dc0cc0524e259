"""Real HTTP servers on loopback standing in for the mail providers' APIs.

Each :class:`ProviderAPI` is a ``ThreadingHTTPServer`` on 127.0.0.1 that
speaks one provider's API shape closely enough for django-anymail's backend:
it checks the API key the way the provider does, records every request, and
answers with the provider's success JSON (carrying a message id), its JSON
error body for API errors and bad keys, and its rejected-recipient shape. It
also answers the read-only GET the connection check makes (``probes``).
Anymail is pointed at it through the backend's API URL option (``api_url``,
or ``client_params.endpoint_url`` for Amazon SES through boto3). The
providers' wire formats live in ``tests/provider_shapes.py``.

Steer a server by mutating its public attributes, like the loopback SMTP
server in ``tests/smtp_server.py``: ``rejected_recipients`` (address ->
``"invalid"`` or ``"inactive"``), ``outage`` (answer every send with the
provider's 5xx), ``echo_key_on_auth_failure`` (quote the presented key back,
as some APIs do, to test redaction), ``probe_reply`` (a canned answer to the
connection check's GET once the key is accepted, e.g. ``shape.domain_not_found()``).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.provider_shapes import PROVIDERS, ProviderShape, RecordedRequest, Reply

HOST = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps the connection alive, as the real APIs do for requests' session.
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self._answer("POST")

    def do_GET(self) -> None:
        self._answer("GET")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=method,
            path=self.path.split("?", 1)[0],
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length),
        )
        reply = self.server.owner._handle(request)
        body, content_type = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Keep test output clean; requests are recorded on the server instead.
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ProviderAPI) -> None:
        super().__init__((HOST, 0), _Handler)
        self.owner = owner


class ProviderAPI:
    """A provider's send API on 127.0.0.1, started on construction."""

    def __init__(self, esp: str, *, key: str | None = None) -> None:
        self.shape: ProviderShape = PROVIDERS[esp]()
        self.esp = esp
        self.key: str = key or f"{esp}-key-{uuid.uuid4().hex}"
        self.requests: list[RecordedRequest] = []
        self.rejected_recipients: dict[str, str] = {}
        self.outage: bool = False
        self.echo_key_on_auth_failure: bool = False
        self.probe_reply: Reply | None = None
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.port: int = int(self._server.server_address[1])
        self.url = f"http://{HOST}:{self.port}/"
        self._thread = threading.Thread(
            # A short poll keeps shutdown() (at fixture teardown) quick.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"provider-api-{esp}",
            daemon=True,
        )
        self._thread.start()
        self._running = True

    # --- configuration helpers -------------------------------------------------
    @property
    def backend(self) -> str:
        return self.shape.backend

    def options(self, *, key: str | None = None, **overrides: Any) -> dict[str, Any]:
        """MAILERS ``OPTIONS`` that point anymail's backend at this server.

        ``key`` replaces the right key (to test refusals); ``overrides`` are
        further options.
        """
        options = self.shape.options(self, self.key if key is None else key)
        options.update(overrides)
        return options

    def mailer(self, *, key: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A whole MAILERS entry for this server."""
        return {"BACKEND": self.backend, "OPTIONS": self.options(key=key, **overrides)}

    def mailer_url(self, *, key: str | None = None) -> str:
        """The ``anymail+<esp>://?...`` URL an operator would put in ``MAILER_URL``."""
        options = self.options(key=key)
        if any(isinstance(value, dict) for value in options.values()):
            raise ValueError(f"{self.esp} options cannot be written as a URL query")
        return f"anymail+{self.esp}://?{urlencode(options)}"

    # --- what happened ----------------------------------------------------------
    @property
    def sends(self) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "POST" and re.match(self.shape.send_path, r.path)
            ]

    @property
    def probes(self) -> list[RecordedRequest]:
        """The connection check's GETs."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "GET" and re.match(self.shape.probe_path, r.path)
            ]

    def recipients_sent(self) -> list[str]:
        return [a for r in self.sends for a in self.shape.recipients(r)]

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    # --- request handling (server thread) ---------------------------------------
    def _handle(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
        request.reply = self._reply(request)
        return request.reply

    def _reply(self, request: RecordedRequest) -> Reply:
        endpoint = self.shape.send_path if request.method == "POST" else self.shape.probe_path
        if not re.match(endpoint, request.path):
            return Reply(404, {"message": f"no such endpoint {request.method} {request.path}"})
        presented = self.shape.presented_key(request)
        if presented != self.shape.expected(self.key):
            return self.shape.unauthorized(presented, echo=self.echo_key_on_auth_failure)
        if self.outage:
            return self.shape.server_error()
        if request.method == "GET":
            return self.probe_reply or self.shape.probe_success(request)
        refused = {
            address: kind
            for address in self.shape.recipients(request)
            for candidate, kind in self.rejected_recipients.items()
            if address.lower() == candidate.lower()
        }
        if refused:
            return self.shape.rejected(refused)
        return self.shape.success(request)


@pytest.fixture
def provider_api_factory() -> Iterator[Callable[..., ProviderAPI]]:
    """Start provider APIs on demand with ``factory(esp, **kwargs)``; all stop at teardown."""
    started: list[ProviderAPI] = []

    def factory(esp: str, **kwargs: Any) -> ProviderAPI:
        api = ProviderAPI(esp, **kwargs)
        started.append(api)
        return api

    yield factory
    for api in started:
        api.stop()
