"""An IMAP connection with one deadline for the whole conversation and caps on what it reads.

One deadline covers the whole conversation (connect, TLS, greeting, login,
every read and write), however slowly the server drips its bytes, and every
line, literal and session has a size cap, so a hostile or broken server
ends in a :class:`MailboxError`, never a hang or a ``MemoryError``. Proof
of arrival and bounce reading (:mod:`mailops.bounces`) both talk through it.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
import time
from collections.abc import Buffer

from django.utils.formats import number_format
from django.utils.translation import gettext as _

# What a test mail's headers need, with room to spare; more is a broken or
# hostile server, refused before anything is allocated.
MAX_LINE = 64 * 1024
MAX_LITERAL = 1024 * 1024
MAX_SESSION = 16 * 1024 * 1024


class MailboxError(Exception):
    """The mailbox could not be read; ``str()`` is a one-line reason, secrets redacted."""

    def __init__(self, reason: str, *, permanent: bool = True, expired: bool = False) -> None:
        super().__init__(reason)
        # A refused login or a missing folder will not heal by polling again.
        self.permanent = permanent
        # The deadline ended the session (the server may simply be slow).
        self.expired = expired


class BoundedIMAP4(imaplib.IMAP4):
    """:mod:`imaplib` with one deadline for the conversation and caps on what it reads.

    Every ``recv`` waits at most for the time left, so a server sending one
    byte a second still ends at the deadline. Reads go through this class's
    own buffer (not the socket file of :mod:`imaplib`, whose ``readline``
    would keep waiting byte after byte within one call).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ends: float,
        ssl_context: ssl.SSLContext | None = None,
        max_literal: int = MAX_LITERAL,
        max_session: int = MAX_SESSION,
    ) -> None:
        self.ends = ends
        self.seconds = max(0.0, ends - time.monotonic())
        self.ssl_context = ssl_context
        self.received = 0
        self.max_literal = max_literal
        self.max_session = max_session
        # Set once a cap or the deadline stopped the conversation: nothing more to say.
        self.broken = False
        self._buffer = bytearray()
        super().__init__(host, port)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _create_socket(self, timeout: float | None) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._time_left())
        except TimeoutError:
            raise self._expired() from None
        if self.ssl_context is None:
            return sock
        try:
            # The TLS handshake as a whole is bounded by the socket's timeout.
            sock.settimeout(self._time_left())
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except TimeoutError:
            sock.close()
            raise self._expired() from None
        except BaseException:
            sock.close()
            raise

    def readline(self) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                if end >= MAX_LINE:
                    raise self._line_too_long()
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) >= MAX_LINE:
                raise self._line_too_long()
            if not self._receive():
                # imaplib turns an unterminated (or empty) line into "EOF".
                line = bytes(self._buffer)
                self._buffer.clear()
                return line

    def read(self, size: int) -> bytes:
        # The size comes from the server's {n} announcement: check it first.
        if size > self.max_literal:
            raise self._too_much(
                _("a literal of %(size)s bytes (at most %(max)s are read)")
                % {"size": _count(size), "max": _count(self.max_literal)}
            )
        while len(self._buffer) < size and self._receive():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def send(self, data: Buffer) -> None:
        self.sock.settimeout(self._time_left())
        try:
            # sendall's timeout bounds the whole send, not each piece.
            self.sock.sendall(data)
        except TimeoutError:
            raise self._expired() from None

    def _receive(self) -> bool:
        """Read what the server has sent, waiting at most until the deadline; False at EOF."""
        self.sock.settimeout(self._time_left())
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise self._expired() from None
        self.received += len(chunk)
        if self.received > self.max_session:
            raise self._too_much(
                _("more than %(max)s bytes in one session") % {"max": _count(self.max_session)}
            )
        self._buffer += chunk
        return bool(chunk)

    def _time_left(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise self._expired()
        return left

    def _expired(self) -> MailboxError:
        self.broken = True
        return MailboxError(
            _(
                "IMAP server %(server)s did not answer in time "
                "(the whole IMAP session may take %(seconds)s s)"
            )
            % {"server": self.where, "seconds": number_format(f"{self.seconds:.3g}")},
            permanent=False,
            expired=True,
        )

    def _too_much(self, what: str) -> MailboxError:
        self.broken = True
        return MailboxError(
            _("IMAP server %(server)s sent %(what)s; stopped reading")
            % {"server": self.where, "what": what}
        )

    def _line_too_long(self) -> MailboxError:
        return self._too_much(_("a line longer than %(max)s bytes") % {"max": _count(MAX_LINE)})


def _count(number: int) -> str:
    """A byte count grouped the way the active language writes thousands."""
    return number_format(number, force_grouping=True)
