"""One connection to one mailer: a row at a time, each with its own outcome.

A :class:`MailerSession` is opened on first use, re-opened after a drop, and
dead once it cannot be opened (:mod:`mailops.sending.chunk_sender` runs one
or several per chunk). Only each row's outcome fields change here (and the
progress marks, see :mod:`mailops.sending.wire`); the caller writes the
outcomes to the database (:mod:`mailops.sending.bookkeeping`).

Two send paths, one meaning of failure: through Django's own SMTP backend a
row goes as prebuilt bytes (:func:`~mailops.sending.composition.wire_message`)
in one SMTP transaction, pipelined where the server offers it
(:mod:`mailops.sending.smtp_transaction`); any other backend (anymail,
locmem, a subclass of the SMTP backend) gets a full message through its
``send_messages``. Both end in one :class:`TransactionError` that says at
which step it failed, and :meth:`MailerSession.send` alone decides what that
means: sent again at once, retried later, failed, or in doubt.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections import deque
from typing import Any

from django.core.mail import EmailMessage
from django.db import DatabaseError
from django.utils.translation import gettext as _

from mailops.mailers.errors import Failure, describe_failure, opening_state
from mailops.models import MailLog
from mailops.recipients import check_address
from mailops.redaction import redact
from mailops.sending.composition import Templates, build_message, wire_message
from mailops.sending.marks import ChunkTaken
from mailops.sending.outcomes import mark_sent, record_failure
from mailops.sending.smtp_transaction import (
    Stage,
    TransactionError,
    offers_pipelining,
    read_end,
    read_group,
    send_transaction,
    write_group,
)
from mailops.sending.stage_probe import StageProbe
from mailops.sending.throttle import RateLimiter
from mailops.sending.wire import WireTrack

logger = logging.getLogger("mailops.delivery")


class NotAccepted(Exception):
    """A backend's ``send_messages`` returned 0 without raising."""


# Reconnects after a drop before a message's transaction, without a message sent in between.
RECONNECTS_IN_A_ROW = 3


class MailerSession:
    """One connection to a mailer, re-opened after a drop; dead once it cannot be opened."""

    def __init__(
        self,
        backend: Any,
        alias: str,
        *,
        retry: bool = False,
        limiter: RateLimiter | None = None,
        track: WireTrack | None = None,
    ) -> None:
        self.backend = backend
        self.alias = alias
        self.retry = retry
        self.limiter = limiter or RateLimiter(None)
        self.is_open = False
        # Set when the connection cannot be (re)opened.
        self.dead: Failure | None = None
        # Progress marks of this connection's rows (None: not kept, see WireLedger).
        self.track = track
        self.reconnects_in_a_row = 0
        # Pipelining (RFC 2920): the row whose end of DATA is written, or
        # held back in ``unsent`` to go out with the next message's
        # commands, and whose reply is not read yet. At most one.
        self.behind: MailLog | None = None
        self.unsent = b""

    def _open(self) -> Failure | None:
        try:
            self.backend.open()
        except Exception as error:  # noqa: BLE001 - any failure to connect is data
            # What the server offered (STARTTLS, AUTH) makes the advice as firm as the check's.
            failure = describe_failure(error, mailer=self.alias, smtp=opening_state(self.backend))
            # A half-open connection (e.g. TLS done, AUTH refused) must still QUIT.
            self.is_open = True
            self.close()
            return failure
        self.is_open = True
        return None

    def invalid_address(self, row: MailLog) -> bool:
        """Fail a row whose address cannot be sent to; rows queued from users were not checked."""
        invalid = check_address(row.recipient)
        if invalid:
            record_failure(row, Failure(f"[{self.alias}] {invalid}"))
        return bool(invalid)

    def send(self, row: MailLog, templates: Templates) -> bool:
        """Send one row and set its outcome; ``False`` (row untouched) if the connection is dead."""
        if self.track is not None and self.track.taken(row):
            # Recovery gave this row's chunk to another run: not ours to send any more.
            return True
        if self.invalid_address(row):
            return True
        if self.dead is None and not self.is_open:
            self.dead = self._open()
        if self.dead is not None:
            return False
        if self.limiter.interval:
            # A message's end is not held back while the next one waits its turn.
            self.finish_behind()
        self.limiter.wait()
        # What goes out: the prebuilt bytes, or (any other backend) a full message.
        message: EmailMessage | None = None
        try:
            wire = self._wire_message(row, templates)
            if wire is None:
                self.finish_behind()
                message = self._message(row)
        except ValueError as error:
            record_failure(row, describe_failure(error, mailer=self.alias))
            return True
        while True:
            esp_message_id = ""
            try:
                if message is not None:
                    esp_message_id = self._send_message(row, message)
                else:
                    assert wire is not None
                    self._transaction(row, wire)
            except TransactionError as error:
                if error.connection_lost:
                    self.close()
                if error.before_transaction and self._may_reconnect():
                    # Nothing of this message reached the server: again, on a fresh connection.
                    self._finish(row, delivered=False)
                    self.dead = self._open()
                    if self.dead is not None:
                        return False
                    continue
                self._record_transaction_failure(row, error)
                if error.refuses_session:
                    # A new connection would be refused the same way: the
                    # rest of the chunk fails with this reason, unsent.
                    self.dead = describe_failure(error.error, mailer=self.alias)
                return True
            except ChunkTaken:
                # Not sent (the mark comes before the end of DATA); the row's
                # outcome is left to the run that has it now.
                self._abort()
                return True
            except DatabaseError as error:
                # The progress mark failed: the message was not sent, and the
                # connection may be mid-transaction, so it cannot carry another.
                self._abort()
                self._finish(row, delivered=False)
                if self.track is not None:
                    self.track.reset()
                if self._may_reconnect():
                    # A database connection that dropped (the mark's opens anew): once more.
                    self.dead = self._open()
                    if self.dead is not None:
                        return False
                    continue
                reason = redact(
                    f"[{self.alias}] "
                    + _("could not record progress before sending: %(error)s") % {"error": error}
                )
                record_failure(row, Failure(reason, transient=True), retry=self.retry)
                return True
            self.reconnects_in_a_row = 0
            if self.behind is row:
                # Its end goes out with the next message's commands; its outcome then.
                return True
            self._finish(row, delivered=True)
            mark_sent(row, esp_message_id=esp_message_id)
            return True

    def _transaction(self, row: MailLog, wire: tuple[str, str, bytes]) -> None:
        """One SMTP transaction for ``row``, its progress mark committed before the end of DATA.

        Lock-step, or pipelined where the server offers it: then ``row`` is
        left :attr:`behind`, its outcome set by the next message or
        :meth:`finish_behind`.
        """
        connection = self.backend.connection
        if not offers_pipelining(connection):
            self.finish_behind()
            self._lock_step(row, wire)
            return
        sender, recipient, data = wire
        unsent, self.unsent = self.unsent, b""
        try:
            write_group(connection, sender, recipient, len(data), ahead=unsent)
        except TransactionError as error:
            # The previous message is in doubt if its end went out whole,
            # else not delivered. This one got no reply: sent again on a fresh connection.
            self._settle_behind(lost="after_dot" if error.ahead_sent else "data")
            raise
        if not self._settle_behind():
            # The previous message's reply was the last this connection gave.
            raise TransactionError(
                OSError("connection lost before MAIL was answered"),
                stage="mail",
                connection_lost=True,
            )
        track = self.track
        if track is None:
            self.unsent = read_group(connection, *wire)
        else:
            try:
                # Its mark carries the previous message's outcome (see wire).
                track.begin(row)
                self.unsent = read_group(connection, *wire, before_end=track.confirm)
            finally:
                track.settle()
        self.behind = row

    def _lock_step(self, row: MailLog, wire: tuple[str, str, bytes]) -> None:
        track = self.track
        if track is None:
            send_transaction(self.backend.connection, *wire)
            return
        try:
            # Sent now, committed by the time the message's end goes out (see wire).
            track.begin(row)
            send_transaction(self.backend.connection, *wire, before_end=track.confirm)
        finally:
            track.settle()

    def _settle_behind(self, *, lost: Stage | None = None) -> bool:
        """Read the verdict on the message :attr:`behind`; ``False`` if the connection is lost.

        ``lost``: the connection failed before its reply could be read, at
        that stage (``after_dot``: in doubt; ``data``: its end never went out).
        """
        row, self.behind = self.behind, None
        if row is None:
            return lost is None
        unsent, self.unsent = self.unsent, b""
        try:
            if lost is not None:
                raise TransactionError(
                    OSError("connection lost while the end of DATA was written"),
                    stage=lost,
                    connection_lost=True,
                )
            read_end(self.backend.connection, unsent)
        except TransactionError as error:
            if error.connection_lost:
                self.close()
            self._record_transaction_failure(row, error)
            return not error.connection_lost
        self._finish(row, delivered=True)
        mark_sent(row, esp_message_id="")
        return True

    def finish_behind(self) -> None:
        """Send the held-back end of the message :attr:`behind` and read its verdict."""
        if self.behind is not None:
            self._settle_behind()

    def _may_reconnect(self) -> bool:
        """One reconnect per message, and only a few in a row (a server that keeps dropping)."""
        if self.reconnects_in_a_row >= RECONNECTS_IN_A_ROW:
            return False
        self.reconnects_in_a_row += 1
        return True

    def _finish(self, row: MailLog, *, delivered: bool | None) -> None:
        if self.track is not None:
            self.track.finish(row, delivered=delivered)

    def _record_transaction_failure(self, row: MailLog, error: TransactionError) -> None:
        if isinstance(error.error, NotAccepted):
            record_failure(row, Failure(f"[{self.alias}] {error.error}"))
            self._finish(row, delivered=False)
            return
        if not error.in_doubt:
            record_failure(row, describe_failure(error.error, mailer=self.alias), retry=self.retry)
            self._finish(row, delivered=False)
            return
        # Recorded as in doubt with the next mark: a worker that dies now leaves it in doubt too.
        self._finish(row, delivered=None)
        cause = describe_failure(error.error).reason
        reason = f"[{self.alias}] " + _(
            "in doubt: the connection failed after the whole message "
            "was sent and before the server answered (%(cause)s). The server may have "
            "accepted it, so it was not retried automatically; check with the recipient "
            "before resending"
        ) % {"cause": cause}
        record_failure(row, Failure(reason, connection_lost=True, in_doubt=True))

    def _send_message(self, row: MailLog, message: EmailMessage) -> str:
        """``message`` through the backend's ``send_messages``; the provider's message id.

        The same outcomes as the bytes path: its progress mark first (a
        failed one raises ``ChunkTaken`` or ``DatabaseError``), and a failure
        as a :class:`TransactionError` at the step an SMTP backend was at
        (:class:`StageProbe`); other backends' failures come before acceptance.
        """
        if self.track is not None:
            self.track.mark(row)
        probe = StageProbe.attach(self.backend)
        try:
            accepted = self.backend.send_messages([message])
        except Exception as error:
            # A refused message is data, not a crash.
            stage: Stage = probe.stage_of(error) if probe is not None else "data"
            refusing = probe is not None and probe.refuses_session
            # A refusing server's connection ends now, with QUIT, as on the bytes path.
            lost = describe_failure(error).connection_lost or refusing
            raise TransactionError(
                error, stage=stage, connection_lost=lost, refuses_session=refusing
            ) from error
        finally:
            if probe is not None:
                probe.detach()
        if not accepted:
            raise TransactionError(
                NotAccepted(_("the mailer accepted no message")),
                stage="data",
                connection_lost=False,
            )
        return _esp_message_id(message)

    def drain(self, pending: deque[MailLog], templates: Templates) -> None:
        """Send rows from the shared queue until it is empty or this connection is dead.

        Every row taken has its outcome when this returns (none is left :attr:`behind`).
        """
        while self.dead is None:
            try:
                row = pending.popleft()
            except IndexError:
                break
            if not self.send(row, templates):
                # Not sent: another connection may still take it.
                pending.appendleft(row)
        self.finish_behind()

    def _message(self, row: MailLog) -> EmailMessage:
        """The row's message, built in full through Django's email API."""
        return build_message(
            to=row.recipient,
            subject=row.subject,
            body=row.body,
            from_email=row.from_email,
            message_id=row.message_id,
            mailer=self.alias,
        )

    def _wire_message(self, row: MailLog, templates: Templates) -> tuple[str, str, bytes] | None:
        """Envelope and bytes for the open SMTP connection, or ``None``: not Django's SMTP backend.

        Raises ``ValueError`` for a message that cannot be built.
        """
        # Templates exist only for Django's own SMTP backend.
        if not templates or self.backend.connection is None:
            return None
        return wire_message(self.backend, row, templates, mailer=self.alias)

    def _abort(self) -> None:
        """Hang up mid-transaction without QUIT: after DATA, it would be taken for the message."""
        connection = getattr(self.backend, "connection", None)
        if isinstance(connection, smtplib.SMTP) and self.behind is None:
            with contextlib.suppress(OSError):
                connection.close()
        self.close()

    def close(self) -> None:
        """Close the mailer connection (it is re-opened on the next message)."""
        if self.is_open:
            self.finish_behind()
        if self.is_open:
            self.is_open = False
            try:
                self.backend.close()
            except Exception as error:  # noqa: BLE001 - a failed QUIT changes no outcome
                logger.info("closing mailer %s: %s", self.alias, redact(str(error)))


def _esp_message_id(message: Any) -> str:
    status = getattr(message, "anymail_status", None)
    message_id = getattr(status, "message_id", None)
    return str(message_id) if message_id else ""
