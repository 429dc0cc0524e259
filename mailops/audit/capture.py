"""What one ``send_messages`` call did with each site message, recipient by recipient.

:mod:`mailops.audit.hook` fills a :class:`SendCapture` while the backend
sends (which message was attempted, what raised, which recipients the SMTP
server refused, what anymail's provider answered); :meth:`SendCapture.outcomes`
then says, per recipient, ``sent`` or ``failed`` with a redacted reason.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import make_msgid, parseaddr
from typing import Any

from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.utils import DNS_NAME
from django.db import DatabaseError
from django.utils.translation import gettext as _

from mailops.conf import stored_language
from mailops.mailers.errors import Failure, SMTPState, describe_failure

logger = logging.getLogger("mailops.audit")

# Header that marks mailops' own messages (composition.build_message): they
# already have their row, written before they were sent.
MAILOPS_HEADER = "X-Mailops-Mailer"

# Where the hook notes the alias a backend was built for when the backend has
# none (Django's classic default mailer).
ALIAS_ATTRIBUTE = "_mailops_alias"

# Anymail recipient statuses meaning the provider will not send to that address.
ANYMAIL_REFUSED = frozenset({"rejected", "failed", "invalid"})


@dataclass
class RecipientOutcome:
    """One row to write: the address as logged and, if it failed, why."""

    recipient: str
    failure: Failure | None = None
    esp_message_id: str = ""
    # Not sent: the address is on the suppression list (the entry's reason).
    suppressed: str = ""


@dataclass
class MessageRecord:
    """One site message of the call and what happened to it while it was sent."""

    message: Any
    message_id: str
    # Whether the Message-ID header was set here (and is removed afterwards).
    added_message_id: bool
    recipients: list[str]
    attempted: bool = False
    sent: bool = False
    error: BaseException | None = None
    # SMTP: what sendmail() returned, {envelope address: (code, text)}.
    refused: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    # anymail: {address (lower case): (status, provider message id)}.
    provider_statuses: dict[str, tuple[str, str]] | None = None
    esp_name: str = ""
    # Recipients taken off the message (suppression list): {recipient: reason}.
    suppressed: dict[str, str] = field(default_factory=dict)
    # The sender's to/cc/bcc lists, put back after the send.
    original_lists: dict[str, Any] | None = None


def is_site_message(message: Any) -> bool:
    """A message that is not mailops' own and has someone to go to."""
    headers = getattr(message, "extra_headers", None)
    if not isinstance(headers, dict) or MAILOPS_HEADER in headers:
        return False
    recipients = getattr(message, "recipients", None)
    return callable(recipients) and bool(recipients())


# The Message-ID header in the bytes Django's SMTP backend hands to sendmail().
_WIRE_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


def wire_message_id(data: bytes) -> str:
    """The Message-ID in a message's header block ("" if it has none)."""
    end = data.find(b"\r\n\r\n")
    found = _WIRE_MESSAGE_ID.search(data, 0, end if end >= 0 else len(data))
    return found[1].decode("ascii", "replace") if found else ""


def _own_message_id(message: Any) -> str:
    """The Message-ID the sender set in ``extra_headers`` ("" if none)."""
    for name, value in message.extra_headers.items():
        if name.lower() == "message-id":
            return str(value)
    return ""


def _unique(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for address in addresses:
        key = address_key(address)
        if key not in seen:
            seen.add(key)
            result.append(address)
    return result


def address_key(address: str) -> str:
    """The bare address, lower case: how recipients are compared."""
    return (parseaddr(str(address))[1] or str(address)).lower()


class SendCapture:
    """The site messages of one ``send_messages`` call and their outcomes."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.alias = str(getattr(backend, "alias", "") or getattr(backend, ALIAS_ATTRIBUTE, ""))
        # Site messages by id(), noted as the backend takes them (see watch()).
        self.records: dict[int, MessageRecord] = {}
        self.is_smtp = isinstance(backend, SMTPBackend)
        # Django's SMTP backend: the Message-ID is read from the bytes it sends,
        # so the message is never changed (and its headers keep Django's order).
        # An anymail provider: the id is set on the message (see note()). Other
        # backends (locmem, console, file): left as Django builds them; the row
        # has the sender's own Message-ID, if any.
        self.asks_provider = _is_anymail(backend)
        # The record whose bytes are going over the SMTP connection right now.
        self.current: MessageRecord | None = None
        # Why the connection could not be opened (also when failing silently).
        self.open_error: BaseException | None = None
        # What that connection knew when it failed (the server's STARTTLS, AUTH).
        self.open_state: SMTPState | None = None
        # What send_messages() raised, if anything.
        self.raised: BaseException | None = None

    def watch(self, email_messages: Any) -> Any:
        """What to hand the backend instead of ``email_messages``: the same messages.

        A list (any collection) is passed as it is, its messages noted first.
        An iterator is not read ahead: it is wrapped in a generator that notes
        each message as the backend takes it, so a backend sees messages (and
        an iterator's exception) when it would have without the audit. Both
        keep what the backend tests (an empty list is falsy; an iterator, even
        an empty one, is not, and Django's SMTP backend then opens the
        connection first).
        """
        if email_messages is None or isinstance(email_messages, Collection):
            for message in email_messages or ():
                self.note(message)
            return email_messages
        return self._noting(email_messages)

    def _noting(self, email_messages: Iterable[Any]) -> Iterator[Any]:
        for message in email_messages:
            self.note(message)
            yield message

    def note(self, message: Any) -> None:
        """Track ``message`` if it is a site message; never raises (a send must not stop)."""
        try:
            if not is_site_message(message) or id(message) in self.records:
                return
            own_id = _own_message_id(message)
            added = False
            if not own_id and self.asks_provider:
                # A provider generates its own Message-ID unless given one: set one,
                # so the row names the id the recipient sees (removed afterwards).
                own_id = make_msgid(domain=DNS_NAME)
                message.extra_headers["Message-ID"] = own_id
                added = True
            self.records[id(message)] = MessageRecord(
                message=message,
                message_id=own_id,
                added_message_id=added,
                recipients=_unique([str(r) for r in message.recipients()]),
            )
        except Exception:
            logger.exception("site mail: could not prepare the audit of a message")

    def tracks(self, message: Any) -> MessageRecord | None:
        return self.records.get(id(message))

    def restore_messages(self) -> None:
        """Leave the sender's messages as they were: drop the Message-IDs set here,
        give back the recipient lists suppression shortened."""
        for record in self.records.values():
            if record.added_message_id:
                record.message.extra_headers.pop("Message-ID", None)
            if record.original_lists is not None:
                for name, value in record.original_lists.items():
                    setattr(record.message, name, value)
                record.original_lists = None

    # --- suppression (MAILOPS["SUPPRESS_SITE_MAIL"]) ---------------------------------

    def suppress(self, email_messages: Any) -> Any:
        """What to hand the backend: the messages without their suppressed recipients.

        A message left with no recipient is not handed over at all (so not
        sent and not counted, as Django counts only what it sends). The
        result is ``email_messages`` itself when nothing is suppressed; a new
        list when a message is left out of a list; for an iterator, a
        generator that looks each message up as the backend takes it.
        """
        if email_messages is None or isinstance(email_messages, Collection):
            messages = list(email_messages or ())
            found = _suppressed_among(r for m in messages for r in self._recipients_of(m))
            if not found:
                return email_messages
            kept = [m for m in messages if self._strip(m, found)]
            return email_messages if len(kept) == len(messages) else kept
        return self._suppressing(email_messages)

    def _suppressing(self, email_messages: Iterable[Any]) -> Iterator[Any]:
        for message in email_messages:
            try:
                found = _suppressed_among(self._recipients_of(message))
            except DatabaseError:
                # As in hook._suppressed: the site's mail goes out unfiltered.
                logger.exception("site mail: the suppression list could not be read")
                found = {}
            if not found or self._strip(message, found):
                yield message

    def _recipients_of(self, message: Any) -> list[str]:
        record = self.records.get(id(message))
        return record.recipients if record is not None else []

    def _strip(self, message: Any, found: dict[str, str]) -> bool:
        """Take ``found`` addresses off ``message``; whether anyone is left to send to."""
        record = self.records.get(id(message))
        if record is None:
            return True
        mine = {r: found[address_key(r)] for r in record.recipients if address_key(r) in found}
        if not mine:
            return True
        record.suppressed.update(mine)
        record.recipients = [r for r in record.recipients if r not in mine]
        record.original_lists = {}
        for name in ("to", "cc", "bcc"):
            value = getattr(message, name, None)
            if isinstance(value, list | tuple):
                record.original_lists[name] = value
                # A new list: the sender's own stays as it was (restored afterwards).
                setattr(message, name, [a for a in value if address_key(str(a)) not in found])
        return bool(record.recipients)

    def outcomes(
        self, sent_count: int | None
    ) -> list[tuple[MessageRecord, list[RecipientOutcome]]]:
        """Per site message, per recipient: sent, failed with the reason, or suppressed.

        The reasons are stored in the log rows: written in the site's language
        (see stored_language), not in that of the request that sent the mail.
        """
        with stored_language():
            unresolved_failure = self._unresolved_failure(sent_count)
            return [
                (
                    record,
                    [RecipientOutcome(r, suppressed=why) for r, why in record.suppressed.items()]
                    + self._message_outcomes(record, unresolved_failure),
                )
                for record in self.records.values()
            ]

    def _fail(self, error: BaseException, *, smtp: SMTPState | None = None) -> Failure:
        return describe_failure(error, mailer=self.alias or None, smtp=smtp)

    def _message_outcomes(
        self, record: MessageRecord, unresolved: Failure | None
    ) -> list[RecipientOutcome]:
        if record.error is not None:
            return self._failed_message(record, record.error)
        if record.provider_statuses is not None:
            return self._provider_outcomes(record)
        if record.attempted:
            if record.sent:
                return self._smtp_outcomes(record)
            failure = Failure(self._prefix(_("the mailer did not send this message")))
            return [RecipientOutcome(r, failure) for r in record.recipients]
        # Never handed to the server: see _unresolved_failure().
        return [RecipientOutcome(r, unresolved) for r in record.recipients]

    def _failed_message(
        self, record: MessageRecord, error: BaseException
    ) -> list[RecipientOutcome]:
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            # Every recipient refused, each with the server's own reply.
            return self._smtp_outcomes(record, refused=dict(error.recipients))
        failure = self._fail(error)
        return [RecipientOutcome(r, failure) for r in record.recipients]

    def _smtp_outcomes(
        self, record: MessageRecord, refused: dict[str, Any] | None = None
    ) -> list[RecipientOutcome]:
        refused = record.refused if refused is None else refused
        if not refused:
            return [RecipientOutcome(r) for r in record.recipients]
        by_key = {address_key(k): v for k, v in refused.items()}
        outcomes = []
        for recipient in record.recipients:
            reply = by_key.get(self._envelope_key(recipient))
            failure = None
            if reply is not None:
                single = smtplib.SMTPRecipientsRefused({recipient: reply})
                failure = self._fail(single)
            outcomes.append(RecipientOutcome(recipient, failure))
        return outcomes

    def _envelope_key(self, recipient: str) -> str:
        """The address as the SMTP backend put it in RCPT TO (IDNA domain)."""
        prep = getattr(self.backend, "prep_address", None)
        if prep is not None:
            try:
                return address_key(prep(recipient))
            except ValueError:
                pass
        return address_key(recipient)

    def _provider_outcomes(self, record: MessageRecord) -> list[RecipientOutcome]:
        statuses = record.provider_statuses or {}
        outcomes = []
        for recipient in record.recipients:
            status, esp_id = statuses.get(address_key(recipient), ("unknown", ""))
            failure = None
            if status in ANYMAIL_REFUSED:
                failure = Failure(
                    self._prefix(
                        _("%(provider)s %(status)s this recipient")
                        % {"provider": record.esp_name, "status": status}
                    )
                )
                esp_id = ""
            outcomes.append(RecipientOutcome(recipient, failure, esp_message_id=esp_id))
        return outcomes

    def _unresolved_failure(self, sent_count: int | None) -> Failure | None:
        """Why messages the backend reported nothing about were not sent (``None``: sent)."""
        if self.open_error is not None:
            return self._fail(self.open_error, smtp=self.open_state)
        if self.is_smtp:
            # Django's SMTP backend stops at the first message that raises;
            # messages it did not reach were never offered to the server.
            if self.raised is not None:
                reason = self._fail(self.raised).reason
                return Failure(
                    _("not attempted: the mailer stopped at an earlier error: %(reason)s")
                    % {"reason": reason}
                )
            return Failure(self._prefix(_("the mailer did not send this message")))
        if self.raised is not None:
            return self._fail(self.raised)
        # Messages left with no recipient were never handed to the backend.
        expected = sum(1 for record in self.records.values() if record.recipients)
        if sent_count is not None and sent_count >= expected:
            return None
        # A backend without per-message details: its count is all there is.
        return Failure(
            self._prefix(
                _("the mailer reported %(sent)d of %(expected)d sent")
                % {"sent": sent_count or 0, "expected": expected}
            )
        )

    def _prefix(self, reason: str) -> str:
        return f"[{self.alias}] {reason}" if self.alias else reason


def _suppressed_among(recipients: Iterable[str]) -> dict[str, str]:
    """``{address_key: rejection reason}`` of the suppressed ones among ``recipients``."""
    from mailops.suppression.selection import active_for

    keys = {address_key(r) for r in recipients}
    if not keys:
        return {}
    found = active_for(keys)
    return {key: entry.rejection_reason for key, entry in found.items()}


def _is_anymail(backend: Any) -> bool:
    try:
        from anymail.backends.base import AnymailBaseBackend
    except ImportError:  # pragma: no cover - anymail is a hard dependency
        return False
    return isinstance(backend, AnymailBaseBackend)
