"""A fake IMAP server on loopback that misbehaves on purpose, for proof-of-arrival tests.

``hostile_imap`` speaks just enough IMAP for :mod:`mailops.arrival.imap`
(CAPABILITY, LOGIN, AUTHENTICATE PLAIN, LIST, EXAMINE, UID SEARCH, UID
FETCH, LOGOUT), always "finding" the message, and can be told to:

- ``drip``: send its greeting one byte at a time, a pause between bytes,
  for ``drip_for`` seconds (then hang up, so a client without a deadline
  ends too, just much later);
- ``greeting``: greet with any bytes (a line far too long, say);
- ``fetch_literal``: announce a literal of that many bytes in the FETCH
  reply (then send a little and wait);
- ``echo_login``: refuse LOGIN and quote back the arguments it was sent,
  escaped as they came, as some servers do;
- ``headers``: the message headers FETCH returns (forged
  Authentication-Results, say);
- ``list_lines``: the LIST reply, raw (folder names as literals, modified UTF-7);
  ``special_use_lines``: announce SPECIAL-USE and answer ``LIST … RETURN
  (SPECIAL-USE)`` with these.

Each connection is handled in its own thread; ``logins`` records the
credentials each AUTHENTICATE PLAIN carried (decoded), ``examined`` the
folder names EXAMINE was sent, as they came.
"""

from __future__ import annotations

import base64
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.smtp_server import HOST, SMTPTestCA

USER = "ops@example.com"
AUTHSERV_ID = "mx.hostile.test"
DEFAULT_HEADERS = (
    f"Authentication-Results: {AUTHSERV_ID}; spf=pass smtp.mailfrom=example.com\r\n"
    "Message-ID: <any@example.com>\r\n"
    "Subject: test\r\n"
    "\r\n"
)
CAPABILITY = b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"


@dataclass
class Behaviour:
    drip: bool = False
    drip_pause: float = 0.2
    drip_for: float = 30.0
    greeting: bytes = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hostile ready\r\n"
    fetch_literal: int | None = None
    echo_login: bool = False
    headers: str = DEFAULT_HEADERS
    list_lines: list[bytes] = field(
        default_factory=lambda: [b'* LIST (\\HasNoChildren) "/" INBOX\r\n']
    )
    # Announce SPECIAL-USE and answer LIST ... RETURN (SPECIAL-USE) with these
    # lines instead (RFC 6154 lets a plain LIST leave the flags out).
    special_use_lines: list[bytes] | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)
    examined: list[bytes] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        if self.server.tls is not None:
            # Implicit TLS (imaps): the handshake first, bounded so a silent client ends.
            self.request.settimeout(10)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def handle(self) -> None:
        behaviour = self.server.behaviour
        try:
            if behaviour.drip:
                self._drip(behaviour)
                return
            self.wfile.write(behaviour.greeting)
            while not self.server.stopping.is_set():
                line = self.rfile.readline(100_000)
                if not line:
                    return
                if not self._answer(line.rstrip(b"\r\n"), behaviour):
                    return
        except OSError:
            return

    def _drip(self, behaviour: Behaviour) -> None:
        ends = time.monotonic() + behaviour.drip_for
        endless = b"* OK " + b"slow " * 100_000
        for byte in endless:
            if time.monotonic() > ends or self.server.stopping.wait(behaviour.drip_pause):
                return
            self.wfile.write(bytes([byte]))

    def _answer(self, line: bytes, behaviour: Behaviour) -> bool:
        tag, _, rest = line.partition(b" ")
        command, _, arguments = rest.partition(b" ")
        name = command.upper()
        if name == b"UID":
            name, _, arguments = arguments.partition(b" ")
            name = b"UID " + name.upper()
        out = self.wfile
        if name == b"CAPABILITY":
            extra = b"" if behaviour.special_use_lines is None else b" SPECIAL-USE"
            out.write(CAPABILITY.rstrip() + extra + b"\r\n" + tag + b" OK done\r\n")
        elif name == b"LOGIN":
            if behaviour.echo_login:
                out.write(tag + b" NO [AUTHENTICATIONFAILED] refused: LOGIN " + arguments + b"\r\n")
            else:
                out.write(tag + b" OK logged in\r\n")
        elif name == b"AUTHENTICATE":
            out.write(b"+ \r\n")
            blob = self.rfile.readline(100_000).strip()
            _, user, password = base64.b64decode(blob).decode("utf-8").split("\0")
            behaviour.logins.append((user, password))
            out.write(tag + b" OK logged in\r\n")
        elif name == b"LIST":
            lines = behaviour.list_lines
            if behaviour.special_use_lines is not None and b"RETURN (SPECIAL-USE)" in arguments:
                lines = behaviour.special_use_lines
            out.write(b"".join(lines) + tag + b" OK listed\r\n")
        elif name in (b"EXAMINE", b"SELECT"):
            behaviour.examined.append(arguments)
            out.write(b"* 1 EXISTS\r\n" + tag + b" OK [READ-ONLY] examined\r\n")
        elif name == b"UID SEARCH":
            out.write(b"* SEARCH 1\r\n" + tag + b" OK searched\r\n")
        elif name == b"UID FETCH":
            self._fetch(tag, behaviour)
        elif name == b"LOGOUT":
            out.write(b"* BYE bye\r\n" + tag + b" OK logged out\r\n")
            return False
        else:
            out.write(tag + b" BAD unknown command\r\n")
        return True

    def _fetch(self, tag: bytes, behaviour: Behaviour) -> None:
        head = b'* 1 FETCH (UID 1 INTERNALDATE "07-Dec-2026 01:00:00 +0000" BODY[HEADER] '
        if behaviour.fetch_literal is not None:
            self.wfile.write(head + b"{%d}\r\n" % behaviour.fetch_literal + b"x" * 4096)
            # Then nothing: the client must refuse the announcement, not wait for it.
            self.server.stopping.wait(30)
            return
        data = behaviour.headers.encode()
        self.wfile.write(
            head + b"{%d}\r\n" % len(data) + data + b")\r\n" + tag + b" OK fetched\r\n"
        )


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None) -> None:
        self.behaviour = behaviour
        self.tls = tls
        self.stopping = threading.Event()
        super().__init__((HOST, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-handshake or mid-drip is what the tests do on purpose.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


@dataclass
class HostileIMAPServer:
    """A running fake IMAP server: where it listens and how it misbehaves."""

    behaviour: Behaviour
    port: int
    server: _Server
    host: str = HOST
    username: str = USER
    password: str = "hostile-Secret-99"
    tls: bool = False

    def mailbox(self, **overrides: Any) -> dict[str, Any]:
        """A ``MAILOPS["MAILBOXES"]`` entry for this server."""
        entry: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "ssl": self.tls,
            "timeout": 20,
            "authserv_id": AUTHSERV_ID,
        }
        entry.update(overrides)
        return entry

    def stop(self) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def start_hostile_imap(
    behaviour: Behaviour | None = None, *, tls: ssl.SSLContext | None = None
) -> HostileIMAPServer:
    """Start the server; with ``tls``, it speaks implicit TLS (imaps) with that context."""
    server = _Server(behaviour or Behaviour(), tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Accepting from the start: listen() ran in the constructor.
    return HostileIMAPServer(
        behaviour=server.behaviour,
        port=server.server_address[1],
        server=server,
        tls=tls is not None,
    )


@pytest.fixture
def hostile_imap() -> Iterator[HostileIMAPServer]:
    """A misbehaving IMAP server on loopback; set ``hostile_imap.behaviour`` per test."""
    server = start_hostile_imap()
    yield server
    server.stop()


@pytest.fixture
def hostile_imaps(trust_smtp_ca: SMTPTestCA) -> Iterator[HostileIMAPServer]:
    """The same over implicit TLS, with a certificate of the session's (trusted) test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trust_smtp_ca.ca.issue_cert(HOST).configure_cert(context)
    server = start_hostile_imap(tls=context)
    yield server
    server.stop()
