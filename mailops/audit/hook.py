"""Seeing every message the site sends, without the host changing any ``BACKEND``.

How: :func:`install` (called once from ``MailopsConfig.ready()``) wraps
``MailersHandler.create_connection``, the one place Django 6.1 makes mailer
instances: ``mailers[alias]``, ``get_connection()``, ``send_mail``,
``send_mass_mail``, ``mail_admins``, ``EmailMessage.send`` and third-party
apps all get their backend there. Each new instance gets its
``send_messages`` wrapped on the instance.

Why not patch ``send_messages`` on backend classes: every backend class
overrides it (Django's, anymail's, third-party ones, classes named in
settings changed later by ``override_settings``), subclasses call
``super().send_messages()`` (two wrappers on one call), and a class patch
changes the class for code that never asked for it. One wrapper per
instance, added where instances are born, has none of these problems; a
backend constructed directly (deprecated in 6.1) is not seen.

``MAILOPS["AUDIT_ALL_MAIL"]`` is read on every call, so turning it off
leaves only a dictionary lookup per ``send_messages``.

What a backend's return value hides is read on the way:

* Django's SMTP backend (and subclasses): its ``_send`` and ``open`` are
  wrapped on the instance, and the smtplib connection's ``sendmail``, whose
  return value (the recipients the server refused while accepting others)
  Django drops. Exceptions swallowed under ``fail_silently`` are seen too.
* anymail: its ``post_send`` signal carries each recipient's status and the
  provider's message id (what tracking webhooks later name).
* any other backend: the call's return value and exception.

mailops' own messages (header ``X-Mailops-Mailer``) are skipped: they have
their rows already; its fast path writes bytes over the connection without
``send_messages`` at all.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from functools import wraps
from typing import Any

from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.handler import MailersHandler

from mailops.audit.capture import SendCapture, address_key
from mailops.audit.rows import (
    backend_path,
    build_site_rows,
    insert_site_rows,
    log_unwritten,
    write_site_rows,
)
from mailops.audit.writer import background_writer
from mailops.conf import get_setting
from mailops.mailers.errors import opening_state

logger = logging.getLogger("mailops.audit")

# The call being audited in this thread (or task); None outside one. A backend
# that hands messages to another mailer inside its send_messages is logged once,
# by the outer call, with what the inner SMTP backend reports about each message.
_CAPTURE: ContextVar[SendCapture | None] = ContextVar("mailops_site_mail", default=None)

_MARK = "_mailops_audit"


def install() -> None:
    """Wrap ``MailersHandler.create_connection`` (once) and listen to anymail's ``post_send``."""
    original = MailersHandler.create_connection
    if not getattr(original, _MARK, False):

        @wraps(original)
        def create_connection(self: MailersHandler, alias: str, /, **kwargs: Any) -> Any:
            backend = original(self, alias, **kwargs)
            audit_backend(backend)
            return backend

        setattr(create_connection, _MARK, True)
        MailersHandler.create_connection = create_connection  # type: ignore[method-assign]

    from anymail.signals import post_send

    post_send.connect(on_post_send, dispatch_uid="mailops.audit.post_send")


def audit_backend(backend: Any) -> None:
    """Make ``backend``'s sends audited (when the setting is on); idempotent."""
    instance_dict = getattr(backend, "__dict__", None)
    if instance_dict is None:
        # A backend with __slots__ cannot take a per-instance wrapper.
        if get_setting("AUDIT_ALL_MAIL"):
            logger.warning("site mail: %s cannot be audited", type(backend).__qualname__)
        return
    if instance_dict.get(_MARK):
        return
    send_messages = backend.send_messages

    def audited_send_messages(email_messages: Sequence[Any]) -> int:
        return _send_audited(backend, send_messages, email_messages)

    backend.send_messages = audited_send_messages
    if isinstance(backend, SMTPBackend):
        _hook_smtp(backend)
    instance_dict[_MARK] = True


def _send_audited(backend: Any, send_messages: Callable[..., int], email_messages: Any) -> int:
    if not get_setting("AUDIT_ALL_MAIL") or _CAPTURE.get() is not None:
        return send_messages(email_messages)
    # A generator would be used up here: hand the backend the same list.
    messages = email_messages if isinstance(email_messages, list) else list(email_messages or [])
    try:
        capture = SendCapture.start(backend, messages)
    except Exception:  # auditing must never stop a send
        logger.exception("site mail: could not prepare the audit of %d message(s)", len(messages))
        capture = None
    if capture is None:
        return send_messages(messages)
    token = _CAPTURE.set(capture)
    sent: int | None = None
    try:
        sent = send_messages(messages)
        return sent
    except BaseException as error:
        capture.raised = error
        raise
    finally:
        _CAPTURE.reset(token)
        _record(capture, sent)


def _record(capture: SendCapture, sent: int | None) -> None:
    """Write the call's rows; whatever goes wrong is logged, never raised."""
    try:
        capture.restore_messages()
        rows = build_site_rows(
            capture.outcomes(sent),
            alias=capture.alias,
            backend=backend_path(capture.backend, capture.alias),
        )
    except Exception:  # the sender must see what it saw before
        logger.exception("site mail: could not build the log rows")
        return
    if get_setting("AUDIT_WRITE") == "inline":
        write_site_rows(rows)
    else:
        background_writer(insert_site_rows, on_error=log_unwritten).submit(rows)


# --- Django's SMTP backend ------------------------------------------------------


def _hook_smtp(backend: Any) -> None:
    original_open = backend.open
    original_send = backend._send

    def audited_open() -> bool | None:
        capture = _CAPTURE.get()
        if capture is None:
            return original_open()
        # open() swallows the error under fail_silently: let it raise, to read
        # the reason, and answer as open() would have (None).
        silent = bool(backend.fail_silently)
        backend.fail_silently = False
        try:
            return original_open()
        except OSError as error:
            capture.open_error = error
            capture.open_state = opening_state(backend)
            if silent:
                return None
            raise
        finally:
            backend.fail_silently = silent

    def audited_send(message: Any) -> bool:
        capture = _CAPTURE.get()
        record = capture.tracks(message) if capture is not None else None
        if capture is None or record is None:
            return original_send(message)
        record.attempted = True
        _record_refusals(backend.connection)
        capture.current = record
        try:
            sent = original_send(message)
        except BaseException as error:
            record.error = record.error or error
            raise
        finally:
            capture.current = None
        record.sent = bool(sent)
        return sent

    backend.open = audited_open
    backend._send = audited_send


def _record_refusals(connection: Any) -> None:
    """Wrap the smtplib connection's ``sendmail`` to keep what it returns and raises."""
    if connection is None or connection.__dict__.get(_MARK):
        return
    sendmail = connection.sendmail

    def recording_sendmail(*args: Any, **kwargs: Any) -> dict[str, tuple[int, bytes]]:
        capture = _CAPTURE.get()
        record = capture.current if capture is not None else None
        try:
            refused = sendmail(*args, **kwargs)
        except smtplib.SMTPException as error:
            # Django drops it under fail_silently; the row still says why.
            if record is not None:
                record.error = error
            raise
        if record is not None and refused:
            record.refused.update(refused)
        return refused

    connection.sendmail = recording_sendmail
    connection.__dict__[_MARK] = True


# --- anymail ---------------------------------------------------------------------


def on_post_send(sender: Any, message: Any, status: Any, esp_name: str, **kwargs: Any) -> None:
    """Receiver for anymail's ``post_send`` (args: ``message``, ``status``, ``esp_name``).

    Keeps each recipient's status and provider message id for the row, so
    tracking webhooks find site rows like any other. Never raises: anymail
    would turn a receiver's exception into a failed send.
    """
    capture = _CAPTURE.get()
    record = capture.tracks(message) if capture is not None else None
    if record is None:
        return
    try:
        record.esp_name = str(esp_name)
        record.provider_statuses = {
            address_key(address): (str(rs.status or "unknown"), str(rs.message_id or ""))
            for address, rs in (status.recipients or {}).items()
        }
    except Exception:  # a send must not fail because of its audit
        logger.exception("site mail: could not read anymail's status for a message")
