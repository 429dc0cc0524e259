"""Delivery tracking: provider webhook events (and bounce reports) become ``MailEvent`` rows.

``events`` applies one event to its ``MailLog`` row, ``receivers`` connects
anymail's signals to it, ``guards`` wraps anymail's webhook views.
"""

from mailops.tracking.events import (
    MAILBOX_SOURCE,
    STATUS_FOR_EVENT,
    DeliveryEvent,
    EventArrivedEarly,
    record_delivery_event,
    record_tracking_event,
)
from mailops.tracking.guards import guard_webhook
from mailops.tracking.receivers import connect_signals, on_post_send, on_tracking
from mailops.tracking.signals import delivery_event_recorded

__all__ = [
    "MAILBOX_SOURCE",
    "STATUS_FOR_EVENT",
    "DeliveryEvent",
    "EventArrivedEarly",
    "connect_signals",
    "delivery_event_recorded",
    "guard_webhook",
    "on_post_send",
    "on_tracking",
    "record_delivery_event",
    "record_tracking_event",
]
