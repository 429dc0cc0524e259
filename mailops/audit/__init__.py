"""Site mail audit: every message the site sends becomes ``MailLog`` rows (trigger ``site``).

Turned on by ``MAILOPS["AUDIT_ALL_MAIL"]``. :mod:`mailops.audit.hook` sees
each message as it goes through a mailer and what the server or provider
said per recipient; :mod:`mailops.audit.rows` turns that into one row per
recipient, written in one bulk insert per ``send_messages`` call.
"""
