"""One SMTP transaction (MAIL, RCPT, DATA) on an open smtplib connection, step by step.

``smtplib.SMTP.sendmail()`` hides which step failed, and that is what
decides whether a failed message may be sent again (RFC 5321 §4.1.1.4,
§6.1): once the final "." of DATA is sent, the server may have accepted
the message even if its reply never arrives. So the steps are run here one
by one and a failure says where it happened:

* ``mail``: nothing of this message reached the server (a connection that
  died since the last message, a 421 at MAIL): retry at once on a fresh
  connection. A sender the server refused (530 "Must issue a STARTTLS
  command first", 550) is not retried: a new connection gets the same
  answer. If it refuses RSET too, it takes nothing more on this
  connection (``refuses_session``);
* ``rcpt``/``data``: refused or dropped before the end of the message: safe
  to retry later, like any transient failure;
* ``after_dot``: the message was sent and its reply was lost: in doubt,
  never retried automatically.

Any other backend's failures are read the same way
(:mod:`mailops.sending.stage_probe`).
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from typing import Literal

from mailops.sending.composition import PLAIN_ADDRESS

Stage = Literal["mail", "rcpt", "data", "after_dot"]

_LEADING_DOT = re.compile(rb"(?m)^\.")


class TransactionError(Exception):
    """A transaction that did not end in a 250: the error and the step it failed at."""

    def __init__(
        self,
        error: BaseException,
        *,
        stage: Stage,
        connection_lost: bool,
        refuses_session: bool = False,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.stage = stage
        # The connection cannot carry the next message (closed, or its state unknown).
        self.connection_lost = connection_lost
        # The server refused the message and then RSET: it will take nothing
        # on this connection, and a new one would get the same answers.
        self.refuses_session = refuses_session
        # Pipelined: whether the previous message's end, written ahead of this
        # message's commands, was handed over whole (see write_group).
        self.ahead_sent = False

    @property
    def refused(self) -> bool:
        """The server answered with a refusal (not a drop, not a 421 "closing")."""
        code = refusal_code(self.error)
        return code is not None and code != 421

    @property
    def in_doubt(self) -> bool:
        """The whole message was sent and no verdict came back: it may have been delivered."""
        return self.stage == "after_dot"

    @property
    def before_transaction(self) -> bool:
        """Nothing of this message reached the server, nor was it refused: send again at once."""
        return self.stage == "mail" and self.connection_lost and not self.refused


def send_transaction(
    connection: smtplib.SMTP,
    sender: str,
    recipient: str,
    data: bytes,
    *,
    before_end: Callable[[], None] | None = None,
) -> None:
    """Send ``data`` to ``recipient``; raise :class:`TransactionError` unless the server said 250.

    ``before_end`` runs once DATA is sent, before its 354 is read and the
    message sent: the message certainly was not delivered yet. If it
    raises, the server is left waiting for the message: close the
    connection.
    """
    stage: Stage = "mail"
    try:
        connection.ehlo_or_helo_if_needed()
        options = []
        if connection.does_esmtp and connection.has_extn("size"):
            options.append(f"size={len(data)}")
        # What smtplib's mail() and rcpt() send, without parsing each address again.
        connection.putcmd("mail", f"from:{_envelope(sender)}{''.join(' ' + o for o in options)}")
        code, reply = connection.getreply()
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        stage = "rcpt"
        connection.putcmd("rcpt", f"to:{_envelope(recipient)}")
        code, reply = connection.getreply()
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        stage = "data"
        connection.putcmd("data")
        if before_end is not None:
            # While the server reads DATA and answers: the hook's database
            # round trip overlaps the server's, instead of adding to it.
            before_end()
        code, reply = connection.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        # sendall() raises unless every byte, the final "." included, was handed over.
        connection.send(_dot_terminated(data))
        stage = "after_dot"
        code, reply = connection.getreply()
        if code == 250:
            return
        if not 400 <= code < 600:
            # A reply that is not one (-1: unreadable): no verdict either way.
            raise smtplib.SMTPServerDisconnected(f"unreadable reply to the end of DATA: {code}")
        # A definite refusal: not delivered, whatever the step.
        stage = "data"
        raise smtplib.SMTPDataError(code, reply)
    except (smtplib.SMTPException, OSError) as error:
        raise _transaction_error(connection, error, stage) from error


def offers_pipelining(connection: smtplib.SMTP) -> bool:
    """Whether the server's EHLO listed PIPELINING (RFC 2920); says EHLO first if needed.

    Raises :class:`TransactionError` (at ``mail``, connection lost) if the greeting fails.
    """
    try:
        connection.ehlo_or_helo_if_needed()
    except (smtplib.SMTPException, OSError) as error:
        _close(connection)
        raise TransactionError(error, stage="mail", connection_lost=True) from error
    return bool(connection.does_esmtp and connection.has_extn("pipelining"))


def write_group(
    connection: smtplib.SMTP, sender: str, recipient: str, size: int, *, ahead: bytes = b""
) -> None:
    """MAIL, RCPT and DATA in one write (RFC 2920), after ``ahead``: the previous message's end.

    Nothing is read: :func:`read_end` (if ``ahead`` held an end) and then
    :func:`read_group` read the replies, in order. A failed write is a
    :class:`TransactionError` at ``mail``; the message in ``ahead`` is then in doubt.
    """
    options = f" SIZE={size}" if connection.has_extn("size") else ""
    group = f"MAIL FROM:{_envelope(sender)}{options}\r\nRCPT TO:{_envelope(recipient)}\r\nDATA\r\n"
    data = ahead + group.encode("ascii")
    sent = 0
    try:
        if connection.sock is None:
            raise smtplib.SMTPServerDisconnected("the connection is closed")
        # Counted, not sendall(): whether the previous message's final "."
        # went out decides whether it is in doubt or safely unsent.
        view = memoryview(data)
        while sent < len(data):
            sent += connection.sock.send(view[sent:])
    except (smtplib.SMTPException, OSError) as error:
        _close(connection)
        failure = TransactionError(error, stage="mail", connection_lost=True)
        failure.ahead_sent = sent >= len(ahead)
        raise failure from error


def read_group(
    connection: smtplib.SMTP,
    sender: str,
    recipient: str,
    data: bytes,
    *,
    before_end: Callable[[], None] | None = None,
) -> bytes:
    """The replies to a :func:`write_group`; the message's end, to be written next.

    Every reply is read, whatever the one before it said, so the next
    command's reply is not mistaken for one of these. ``before_end`` runs as
    in :func:`send_transaction`. The end is not written here: it goes out
    with the next message's group, or alone through :func:`read_end`.
    """
    stage: Stage = "mail"
    try:
        # A 421 is the last reply: the server hangs up without answering the rest.
        mail_code, mail_reply = connection.getreply()
        if mail_code == 421:
            raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
        stage = "rcpt"
        rcpt_code, rcpt_reply = connection.getreply()
        if rcpt_code == 421:
            raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_reply)})
        stage = "data"
        if before_end is not None and mail_code == 250 and rcpt_code in (250, 251):
            # While the server answers DATA (see send_transaction).
            before_end()
        data_code, data_reply = connection.getreply()
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            # The server took DATA without a sender or recipient: an empty
            # message ends it, and the server refuses that for want of either.
            connection.send(b".\r\n")
            connection.getreply()
        if mail_code != 250:
            stage = "mail"
            raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
        if rcpt_code not in (250, 251):
            stage = "rcpt"
            raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_reply)})
        stage = "data"
        if data_code != 354:
            raise smtplib.SMTPDataError(data_code, data_reply)
    except (smtplib.SMTPException, OSError) as error:
        raise _transaction_error(connection, error, stage) from error
    return _dot_terminated(data)


def read_end(connection: smtplib.SMTP, unsent: bytes = b"") -> None:
    """Write ``unsent`` (a message's end, if still held back), then read the reply to its ".".

    Raises :class:`TransactionError` unless the server said 250: at
    ``after_dot`` (in doubt) when no verdict came back, at ``data`` for a refusal.
    """
    # Until every byte, the final "." last, is handed over, nothing was delivered.
    stage: Stage = "data"
    try:
        if unsent:
            connection.send(unsent)
        stage = "after_dot"
        code, reply = connection.getreply()
        if code == 250:
            return
        if not 400 <= code < 600:
            raise smtplib.SMTPServerDisconnected(f"unreadable reply to the end of DATA: {code}")
        # A definite refusal: not delivered.
        stage = "data"
        raise smtplib.SMTPDataError(code, reply)
    except smtplib.SMTPResponseException as error:
        # The reply to "." ends the transaction either way: no RSET, whose
        # reply would be taken for the next message's (already on its way).
        closing = error.smtp_code == 421
        if closing:
            _close(connection)
        raise TransactionError(error, stage=stage, connection_lost=closing) from error
    except (smtplib.SMTPException, OSError) as error:
        _close(connection)
        raise TransactionError(error, stage=stage, connection_lost=True) from error


def _envelope(address: str) -> str:
    """``<address>``, as ``smtplib.quoteaddr()`` gives it; a plain address needs no parsing."""
    if PLAIN_ADDRESS.match(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _dot_terminated(data: bytes) -> bytes:
    """What smtplib's ``data()`` sends: leading dots doubled, ending in CRLF "." CRLF."""
    quoted = _LEADING_DOT.sub(b"..", data)
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    return quoted + b".\r\n"


def refusal_code(error: BaseException) -> int | None:
    """The reply code of a refusal, or ``None`` for an error the server did not answer with."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return int(next(iter(error.recipients.values()))[0])
    if isinstance(error, smtplib.SMTPResponseException):
        return int(error.smtp_code)
    return None


def _transaction_error(
    connection: smtplib.SMTP, error: smtplib.SMTPException | OSError, stage: Stage
) -> TransactionError:
    """What a failure at ``stage`` means, for lock-step and pipelined transactions alike."""
    if isinstance(error, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
        # A reply the server gave (a refusal): the connection may carry on.
        after = _after_refusal(connection, error)
        return TransactionError(
            error,
            stage=stage,
            connection_lost=after != "ready",
            refuses_session=after == "refusing",
        )
    # Disconnected, timed out, or smtplib refusing to go on: the socket is done for.
    _close(connection)
    return TransactionError(error, stage=stage, connection_lost=True)


def _after_refusal(
    connection: smtplib.SMTP, error: smtplib.SMTPException
) -> Literal["ready", "closed", "refusing"]:
    """Make the connection ready for the next message, or say why it cannot be."""
    if refusal_code(error) == 421:
        # The server is closing the connection; smtplib's mail()/rcpt() leave it open.
        _close(connection)
        return "closed"
    return _reset(connection)


def _reset(connection: smtplib.SMTP) -> Literal["ready", "closed", "refusing"]:
    """RSET after a refusal: ``ready``, ``closed`` (421, drop), or ``refusing`` (it said no)."""
    if connection.sock is None:
        return "closed"
    try:
        code, _reply = connection.rset()
    except (smtplib.SMTPException, OSError):
        _close(connection)
        return "closed"
    after = after_rset(code)
    if after == "closed":
        _close(connection)
    elif after == "refusing":
        # Nothing more goes over this connection; it ends with QUIT, as servers expect.
        _quit(connection)
    return after


def after_rset(code: int) -> Literal["ready", "closed", "refusing"]:
    """What the reply to RSET after a refusal says of the connection."""
    if code == 421 or not 200 <= code < 600:
        # Postfix answers RSET with 421 and hangs up after too many errors.
        return "closed"
    if code != 250:
        # It refuses even RSET (530 before STARTTLS): it takes nothing more.
        return "refusing"
    return "ready"


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        _close(connection)


def _close(connection: smtplib.SMTP) -> None:
    try:
        connection.close()
    except OSError:
        # Closing a socket that is already gone changes nothing.
        return
