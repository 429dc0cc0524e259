"""Bounces, delay notices and complaints read from the sender's own mailbox.

``manage.py mailbounces`` (and :func:`mailops.bounces.tasks.read_bounces_task`)
reads the new messages of each mailer's mailbox (``MAILOPS["MAILBOXES"]``,
the one proof of arrival reads) read-only, turns each report into outcomes
per recipient (:mod:`mailops.bounces.reports`), finds the ``MailLog`` row
each is about, and records it through
:func:`mailops.tracking.events.record_delivery_event`, the path provider
webhooks take too. Reports that match no row are kept as
:class:`~mailops.bounces.models.UnmatchedBounce`.
"""
