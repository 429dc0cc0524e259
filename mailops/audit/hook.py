"""Seeing every message the site sends, without the host changing any ``BACKEND``.

How: :func:`install` (called from ``MailopsConfig.ready()`` through
:func:`install_when_enabled`, only while the setting is on) wraps
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
from django.core.signals import setting_changed
from django.db import DatabaseError

from mailops.audit.capture import ALIAS_ATTRIBUTE, SendCapture, address_key, wire_message_id
from mailops.audit.rows import (
    backend_path,
    build_site_rows,
    insert_site_rows,
    log_unwritten,
    write_site_rows,
)
from mailops.audit.writer import background_writer
from mailops.conf import get_setting
from mailops.exceptions import InvalidSetting
from mailops.mailers.errors import opening_state
from mailops.suppression.bypass import bypass_active

logger = logging.getLogger("mailops.audit")

# The call being audited in this thread (or task); None outside one. A backend
# that hands messages to another mailer inside its send_messages is logged once,
# by the outer call, with what the inner SMTP backend reports about each message.
_CAPTURE: ContextVar[SendCapture | None] = ContextVar("mailops_site_mail", default=None)

_MARK = "_mailops_audit"

# Django's own MailersHandler.create_connection while ours is in its place.
_original_create_connection: Callable[..., Any] | None = None


def install_when_enabled() -> None:
    """Patch Django only while ``MAILOPS["AUDIT_ALL_MAIL"]`` is on (called from ``ready()``).

    With the audit off nothing of Django is touched. The setting is read now
    and again whenever ``MAILOPS`` changes (``setting_changed``: what
    ``override_settings`` and pytest-django's ``settings`` send), so tests can
    switch the audit on and off. Patching lazily "on first send" is not an
    option: the first send is inside Django, reachable only through the very
    patch in question. The per-send read of the setting stays, for the rare
    project that changes ``settings.MAILOPS`` in place.
    """
    setting_changed.connect(_on_setting_changed, dispatch_uid="mailops.audit.setting_changed")
    _sync_with_setting()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Receiver for ``setting_changed`` (args: ``setting``, ``value``, ``enter``)."""
    if setting == "MAILOPS":
        _sync_with_setting()


def _sync_with_setting() -> None:
    try:
        enabled = bool(get_setting("AUDIT_ALL_MAIL"))
    except InvalidSetting:
        enabled = False  # manage.py check names the bad value (mailops.E014)
    if enabled:
        install()
    else:
        uninstall()


def install() -> None:
    """Wrap ``MailersHandler.create_connection`` (once) and listen to anymail's ``post_send``."""
    global _original_create_connection
    if _original_create_connection is None:
        original = MailersHandler.create_connection
        _original_create_connection = original

        @wraps(original)
        def create_connection(self: MailersHandler, alias: str, /, **kwargs: Any) -> Any:
            backend = original(self, alias, **kwargs)
            audit_backend(backend, alias=alias)
            return backend

        MailersHandler.create_connection = create_connection  # type: ignore[method-assign]

    from anymail.signals import post_send

    post_send.connect(on_post_send, dispatch_uid="mailops.audit.post_send")


def uninstall() -> None:
    """Give Django back its own ``create_connection`` (instances already wrapped stay so)."""
    global _original_create_connection
    if _original_create_connection is not None:
        MailersHandler.create_connection = _original_create_connection  # type: ignore[method-assign]
        _original_create_connection = None
    from anymail.signals import post_send

    post_send.disconnect(dispatch_uid="mailops.audit.post_send")


def audit_backend(backend: Any, *, alias: str = "") -> None:
    """Make ``backend``'s sends audited (when the setting is on); idempotent.

    ``alias`` names the mailer in the rows when the backend does not know it:
    Django builds the classic ``default`` mailer (no MAILERS) with no alias.
    """
    instance_dict = getattr(backend, "__dict__", None)
    if instance_dict is None:
        # A backend with __slots__ cannot take a per-instance wrapper.
        if get_setting("AUDIT_ALL_MAIL"):
            logger.warning("site mail: %s cannot be audited", type(backend).__qualname__)
        return
    if instance_dict.get(_MARK):
        return
    if alias and not getattr(backend, "alias", None):
        instance_dict[ALIAS_ATTRIBUTE] = alias
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
    capture = SendCapture(backend)
    token = _CAPTURE.set(capture)
    sent: int | None = None
    try:
        # The backend gets what the sender passed (an iterator is not read ahead),
        # less the recipients on the suppression list when SUPPRESS_SITE_MAIL is on.
        sent = send_messages(_suppressed(capture, capture.watch(email_messages)))
        return sent
    except BaseException as error:
        capture.raised = error
        raise
    finally:
        _CAPTURE.reset(token)
        if capture.records:
            _record(capture, sent)


def _suppressed(capture: SendCapture, email_messages: Any) -> Any:
    """``email_messages`` without suppressed recipients, if the site asks for that.

    Mail sent inside a ``SUPPRESSION_BYPASS`` function (password resets by
    default) is not filtered. If the list cannot be read (the database is
    down), the mail goes out unfiltered and the error is logged: suppression
    must never stop the site's mail.
    """
    if not get_setting("SUPPRESS_SITE_MAIL") or bypass_active():
        return email_messages
    try:
        return capture.suppress(email_messages)
    except DatabaseError:
        logger.exception("site mail: the suppression list could not be read; sent unfiltered")
        return email_messages


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
        data = args[2] if len(args) > 2 else kwargs.get("msg")
        if record is not None and not record.message_id and isinstance(data, bytes):
            # The id Django put in these bytes: the one the recipient sees.
            record.message_id = wire_message_id(data)
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
