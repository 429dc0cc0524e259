"""Receivers of anymail's signals, connected in ``MailopsConfig.ready``."""

from __future__ import annotations

from typing import Any

from mailops.models import MailLog, MailStatus
from mailops.tracking.events import record_tracking_event


def on_tracking(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """Receiver for anymail's ``tracking`` signal (args: ``event``, ``esp_name``)."""
    record_tracking_event(event, esp_name=esp_name)


def on_post_send(sender: Any, message: Any, status: Any, esp_name: str, **kwargs: Any) -> None:
    """Receiver for anymail's ``post_send`` (args: ``message``, ``status``, ``esp_name``).

    Stores the provider's message id on the row the moment the provider
    answers, before the delivery chunk's outcomes are written, so a webhook
    arriving in between finds its row (and is asked to retry, not dropped).
    """
    headers = getattr(message, "extra_headers", None) or {}
    if "X-Mailops-Mailer" not in headers or not headers.get("Message-ID"):
        return  # Not a mailops message.
    esp_message_id = status.message_id
    if not isinstance(esp_message_id, str) or not esp_message_id:
        return
    MailLog.objects.filter(
        message_id=headers["Message-ID"], status=MailStatus.SENDING, esp_message_id=""
    ).update(esp_message_id=esp_message_id[:255])


def connect_signals() -> None:
    from anymail.signals import post_send, tracking

    tracking.connect(on_tracking, dispatch_uid="mailops.tracking")
    post_send.connect(on_post_send, dispatch_uid="mailops.post_send")
