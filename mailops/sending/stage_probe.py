"""Which step an SMTP backend's own ``sendmail()`` was at when it failed (the message path).

Django's own SMTP backend sends prebuilt bytes through
:mod:`mailops.sending.smtp_transaction`, step by step. Any other SMTP
backend (a subclass may change what is sent) sends through its
``send_messages()``, where smtplib hides the step; :class:`StageProbe`
watches its connection so that the same rules read its failure.
"""

from __future__ import annotations

import contextlib
import smtplib

from mailops.sending.smtp_transaction import Stage, after_rset, refusal_code


class StageProbe:
    """The commands going out on a backend's smtplib connection, and the reply to RSET.

    So the same rules decide what its failure means: a reply lost after the
    whole message went out is in doubt, a connection found dead at MAIL is
    sent again at once, a server that refuses even the RSET ``sendmail()``
    sends after a refusal takes nothing more on this connection.
    """

    def __init__(self, connection: smtplib.SMTP) -> None:
        self.connection = connection
        self.stage: Stage = "mail"
        self._content_next = False
        # The reply to RSET: sendmail() sends one after a refusal and ignores it.
        self._rset_sent = False
        self.rset_code: int | None = None
        self._send = connection.send
        self._getreply = connection.getreply
        # Instance attributes: this connection only, undone by detach().
        connection.send = self._watch  # type: ignore[method-assign,assignment]
        connection.getreply = self._reply  # type: ignore[method-assign]

    @classmethod
    def attach(cls, backend: object) -> StageProbe | None:
        """A probe on ``backend``'s open smtplib connection, or ``None`` (not SMTP)."""
        connection = getattr(backend, "connection", None)
        if not isinstance(connection, smtplib.SMTP):
            return None
        return cls(connection)

    def _watch(self, data: str | bytes) -> None:
        raw = data.encode("ascii", "replace") if isinstance(data, str) else data
        content, self._content_next = self._content_next, False
        if content and raw.endswith(b"\r\n.\r\n"):
            # After DATA's 354, smtplib's data() sends the message and its "." in one call.
            self._send(data)
            # Every byte, the final "." last, was handed over.
            self.stage = "after_dot"
            return
        verb = raw[:4].upper()
        self._rset_sent = verb == b"RSET"
        if verb in (b"MAIL", b"RCPT", b"DATA"):
            self.stage = {b"MAIL": "mail", b"RCPT": "rcpt", b"DATA": "data"}[verb]  # type: ignore[assignment]
            self._content_next = verb == b"DATA"
        self._send(data)

    def _reply(self) -> tuple[int, bytes]:
        reply = self._getreply()
        if self._rset_sent:
            self._rset_sent = False
            self.rset_code = reply[0]
        return reply

    @property
    def refuses_session(self) -> bool:
        """The server refused the RSET after a refusal (see :class:`TransactionError`)."""
        return self.rset_code is not None and after_rset(self.rset_code) == "refusing"

    def stage_of(self, error: BaseException) -> Stage:
        """Where ``error`` happened; a refusal of the end of DATA is one (not in doubt)."""
        code = refusal_code(error)
        if self.stage == "after_dot" and code is not None and 400 <= code < 600:
            return "data"
        return self.stage

    def detach(self) -> None:
        with contextlib.suppress(AttributeError):
            del self.connection.send
        with contextlib.suppress(AttributeError):
            del self.connection.getreply
