"""Signals of delivery tracking (webhooks and bounce reading)."""

from __future__ import annotations

from django.dispatch import Signal

# A new delivery event (provider webhook, or a bounce, delay notice or
# complaint read from the sender's mailbox) was recorded and applied to its
# row. Sent once per event, never for a replay, inside the transaction that
# saved it. Arguments: sender (the MailEvent class), event (the MailEvent),
# log (its MailLog, as it is after the event), moved (True if the event
# changed the row's status).
delivery_event_recorded = Signal()
