"""Proof of arrival: send a test mail, read it back over IMAP, report where it landed.

``mailboxes`` parses ``MAILBOX_URL``-style settings, ``imap`` searches a
mailbox read-only, ``verify`` sends and polls and records the outcome on the
``MailLog`` row, ``health`` answers "is mail working?" for monitoring.
"""
