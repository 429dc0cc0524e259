"""Settings for Django's own tests/mail (scripts/django_mail_suite).

The site-mail audit is on, or off with ``MAILOPS_AUDIT=0``.
"""

import email.errors
import logging
import os
import sys

from test_sqlite import *  # noqa: F403

# runtests.py replaces INSTALLED_APPS with its ALWAYS_INSTALLED_APPS list right
# after reading this module: add mailops (and what it needs) to that list.
sys.modules["__main__"].ALWAYS_INSTALLED_APPS += ["import_export", "anymail", "mailops"]

MAILOPS = {"AUDIT_ALL_MAIL": os.environ.get("MAILOPS_AUDIT", "1") == "1", "AUDIT_WRITE": "inline"}

# Python < 3.12.5 has no email.errors.HeaderWriteError, which test_backends.py
# imports (it guards a CVE-2024-6923 fix): name it so the module loads.
if not hasattr(email.errors, "HeaderWriteError"):
    email.errors.HeaderWriteError = type("HeaderWriteError", (email.errors.MessageError,), {})

# The audit's own log (rows it could not write: most of these tests are
# SimpleTestCase, where database queries are refused) goes to a file, not
# into the test runner's output that scripts/django_mail_suite compares.
_audit_log = logging.getLogger("mailops")
_audit_log.propagate = False
_audit_log.addHandler(logging.FileHandler(os.environ.get("MAILOPS_AUDIT_LOG", os.devnull)))
