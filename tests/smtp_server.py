"""A real SMTP server on loopback for tests, built on aiosmtpd with ``trustme`` TLS.

Each :class:`LoopbackSMTPServer` runs aiosmtpd's threaded ``Controller`` on
127.0.0.1 in one of three modes: ``"starttls"`` (STARTTLS required before
AUTH), ``"implicit"`` (SMTPS, TLS from the first byte) or ``"none"``
(plain text). Tests steer its replies per recipient and read back what it
accepted. Clients trust its certificate through ``SSL_CERT_FILE``, which the
``trust_smtp_ca`` fixture points at the session's test CA.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

TLSMode = Literal["starttls", "implicit", "none"]
HOST = "127.0.0.1"
DEFAULT_USERNAME = "mailops"
DEFAULT_PASSWORD = "correct horse battery staple"


class _QuietLoginDataDeprecation(logging.Filter):
    """Drop aiosmtpd's own warning, logged on every successful AUTH it handles."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_QuietLoginDataDeprecation())


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    # The controller's readiness probe connects to the configured port, so
    # port 0 cannot be handed to it; ask the kernel for one instead.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ReceivedMessage:
    """One message the server accepted at DATA."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage

    @property
    def message_id(self) -> str | None:
        """The ``Message-ID`` header, or ``None`` when absent."""
        value = self.message["Message-ID"]
        return None if value is None else str(value)


@dataclass(frozen=True)
class SMTPTestCA:
    """The session's test certificate authority and its PEM file."""

    ca: trustme.CA
    cert_path: Path


class _Controller(Controller):
    """A controller that counts connections and permits AUTH without STARTTLS."""

    def __init__(self, owner: LoopbackSMTPServer, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        # aiosmtpd builds one SMTP protocol object per TCP connection, which
        # makes this the place to count connections (EHLO repeats after STARTTLS).
        smtp = super().factory()
        self._owner._count_connection()
        if self._owner.tls_mode != "starttls":
            # aiosmtpd only recognises TLS negotiated by STARTTLS; over SMTPS the
            # whole connection is already encrypted, and in "none" mode plain
            # AUTH is the point. Flipping the flag after construction also skips
            # the security UserWarning aiosmtpd raises for auth_require_tls=False.
            smtp._auth_require_tls = False
        return smtp


class LoopbackSMTPServer:
    """A real SMTP server on 127.0.0.1 whose replies tests can steer.

    Configure behaviour by mutating the public attributes at any time; they
    are read when the matching SMTP command arrives.
    """

    def __init__(
        self,
        *,
        tls_mode: TLSMode = "starttls",
        username: str | None = DEFAULT_USERNAME,
        password: str | None = DEFAULT_PASSWORD,
        require_auth: bool = True,
        ca: trustme.CA | None = None,
    ) -> None:
        if tls_mode not in ("starttls", "implicit", "none"):
            raise ValueError(f"unknown tls_mode {tls_mode!r}")
        self.host: str = HOST
        self.port: int = free_port()
        self.tls_mode: TLSMode = tls_mode
        self.username: str | None = username
        self.password: str | None = password
        self.messages: list[ReceivedMessage] = []
        self.rejected_recipients: dict[str, str] = {}
        self.data_replies: dict[str, str] = {}
        self.drop_connection_for: set[str] = set()
        self.auth_failure_reply: str = "535 5.7.8 Username and Password not accepted."
        self.echo_credentials_on_auth_failure: bool = False
        self.auth_attempts: int = 0
        self.connections: int = 0
        self._lock = threading.Lock()

        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            # Avoids aiosmtpd's socket.getfqdn(), which can stall on DNS.
            "server_hostname": "mailops-test-smtp.localhost",
            "timeout": 30,
        }
        if username is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = require_auth
        if tls_mode != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            (ca or trustme.CA()).issue_cert(HOST, "localhost").configure_cert(context)
            if tls_mode == "starttls":
                kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
            else:
                # The readiness probe wraps its socket with a no-verify client
                # context derived from this one, so SMTPS needs nothing extra.
                kwargs["ssl_context"] = context
        self._controller = _Controller(self, **kwargs)
        self._controller.start()
        with self._lock:
            # The readiness probe opened one connection; tests should not see it.
            self.connections = 0
        self._running = True

    def options(self, **overrides: Any) -> dict[str, Any]:
        """Django SMTP backend ``OPTIONS`` that reach this server."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "use_tls": self.tls_mode == "starttls",
            "use_ssl": self.tls_mode == "implicit",
            "timeout": 5,
        }
        options.update(overrides)
        return options

    def url(self, *, password: str | None = None) -> str:
        """A mailer URL for this server; ``password`` overrides the configured one."""
        scheme = {"starttls": "smtp+tls", "implicit": "smtps", "none": "smtp"}[self.tls_mode]
        userinfo = ""
        if self.username is not None:
            secret = self.password if password is None else password
            userinfo = quote(self.username, safe="")
            if secret is not None:
                userinfo += ":" + quote(secret, safe="")
            userinfo += "@"
        return f"{scheme}://{userinfo}{self.host}:{self.port}?timeout=5"

    def stop(self) -> None:
        """Stop the server; safe to call more than once."""
        if self._running:
            self._running = False
            self._controller.stop()

    def wait_for_messages(self, count: int, timeout: float = 60.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages were accepted and return them all."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                received = list(self.messages)
            if len(received) >= count:
                return received
            if time.monotonic() >= deadline:
                summary = [(m.mail_from, m.rcpt_tos, m.message_id) for m in received]
                raise AssertionError(
                    f"expected {count} message(s) within {timeout}s, got {len(received)}: "
                    f"{summary!r}"
                )
            time.sleep(0.01)

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        with self._lock:
            self.auth_attempts += 1
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False, message=self.auth_failure_reply)
        login = auth_data.login.decode("utf-8", "replace")
        secret = auth_data.password.decode("utf-8", "replace")
        if login == self.username and secret == self.password:
            return AuthResult(success=True, auth_data=auth_data)
        reply = self.auth_failure_reply
        if self.echo_credentials_on_auth_failure:
            # Like servers that quote the submitted credentials back, so the
            # project's redaction of exception text can be tested.
            reply = f"{reply} (user {login!r}, password {secret!r})"
        return AuthResult(success=False, handled=False, message=reply)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Reject, drop, or accept one recipient."""
        key = address.lower()
        if key in {a.lower() for a in self.drop_connection_for}:
            # A 421 reply alone leaves the socket open; aborting the transport
            # is what a client sees when a server goes away mid-transaction.
            if server.transport is not None:
                server.transport.abort()
            return "421 4.4.2 Connection dropped"
        rejected = {a.lower(): reply for a, reply in self.rejected_recipients.items()}
        if key in rejected:
            return rejected[key]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Apply a configured DATA reply, or record the message as accepted."""
        replies = {a.lower(): reply for a, reply in self.data_replies.items()}
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() in replies:
                return replies[rcpt.lower()]
        data = envelope.original_content or b""
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=data,
            message=cast(EmailMessage, email.message_from_bytes(data, policy=email.policy.default)),
        )
        with self._lock:
            self.messages.append(received)
        return "250 2.0.0 OK: queued"


@pytest.fixture(scope="session")
def smtp_ca(tmp_path_factory: pytest.TempPathFactory) -> SMTPTestCA:
    """A test CA for the whole session, its certificate written to a PEM file."""
    ca = trustme.CA()
    cert_path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(cert_path))
    return SMTPTestCA(ca=ca, cert_path=cert_path)


@pytest.fixture
def trust_smtp_ca(smtp_ca: SMTPTestCA, monkeypatch: pytest.MonkeyPatch) -> SMTPTestCA:
    """Make ``ssl.create_default_context()`` trust the test CA (via ``SSL_CERT_FILE``)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_ca.cert_path))
    return smtp_ca


@pytest.fixture
def smtp_server_factory(
    trust_smtp_ca: SMTPTestCA,
) -> Iterator[Callable[..., LoopbackSMTPServer]]:
    """Start servers on demand with ``factory(**kwargs)``; all of them stop at teardown."""
    started: list[LoopbackSMTPServer] = []

    def factory(**kwargs: Any) -> LoopbackSMTPServer:
        kwargs.setdefault("ca", trust_smtp_ca.ca)
        server = LoopbackSMTPServer(**kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., LoopbackSMTPServer]) -> LoopbackSMTPServer:
    """A STARTTLS server that requires AUTH with the default credentials."""
    return smtp_server_factory()


@pytest.fixture
def smtps_server(smtp_server_factory: Callable[..., LoopbackSMTPServer]) -> LoopbackSMTPServer:
    """An implicit-TLS (SMTPS) server that requires AUTH with the default credentials."""
    return smtp_server_factory(tls_mode="implicit")


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    return free_port()
