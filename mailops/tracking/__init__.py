"""Delivery tracking: provider webhook events become ``MailEvent`` rows and statuses.

``events`` applies one event to its ``MailLog`` row, ``receivers`` connects
anymail's signals to it, ``guards`` wraps anymail's webhook views.
"""

from mailops.tracking.events import STATUS_FOR_EVENT, EventArrivedEarly, record_tracking_event
from mailops.tracking.guards import guard_webhook
from mailops.tracking.receivers import connect_signals, on_post_send, on_tracking

__all__ = [
    "STATUS_FOR_EVENT",
    "EventArrivedEarly",
    "connect_signals",
    "guard_webhook",
    "on_post_send",
    "on_tracking",
    "record_tracking_event",
]
