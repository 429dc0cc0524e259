"""Settings for the test suite: the reference project, made hermetic.

``DATABASE_URL`` picks the database (SQLite by default; ``.ci/run`` also
runs the suite on PostgreSQL). Mail never leaves the machine: tests point
mailers at loopback servers they start themselves.
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
for _name in list(os.environ):
    # A developer's own mail settings must not leak into the tests.
    if _name.startswith(("MAILER_", "MAILBOX_", "GMAIL_")) or _name == "MAILOPS_HEALTH_TOKEN":
        del os.environ[_name]

from site_config.settings import *  # noqa: E402, F403

DEBUG = False
# Whatever the environment says: tests that want German ask for it.
LANGUAGE_CODE = "en-us"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {
    "default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    "outbox": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
}
DEFAULT_FROM_EMAIL = "mailops-tests@example.com"
# DNS questions (manage.py maildoctor) go to a closed loopback port unless a test
# starts its own server: nothing asks a nameserver beyond 127.0.0.1.
# Site-mail rows in the sender's thread, so a test reads them at once (the
# background writer has its own tests: tests/test_site_mail_writer.py).
MAILOPS = {
    "DEFAULT_MAILER": "default",
    "FROM_EMAILS": {},
    "DNS_NAMESERVERS": ["127.0.0.1:9"],
    "AUDIT_WRITE": "inline",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"mailops": {"level": "INFO"}, "django.tasks": {"level": "WARNING"}},
}
