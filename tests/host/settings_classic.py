"""The host project on Django's classic mail settings: ``EMAIL_*``, no ``MAILERS``.

Most existing Django projects configure mail this way (deprecated in 6.1,
removed in 7.0). Django builds the ``default`` mailer from these settings,
and mailops must work on it like on any ``MAILERS`` alias.
``pytest --ds=tests.host.settings_classic tests/host/classic`` runs its tests
(scripts/test does); the SMTP port is the loopback test server's, set per
test by the ``classic_smtp`` fixture (tests/host/classic/conftest.py).
"""

from __future__ import annotations

import warnings

from django.utils.deprecation import RemovedInDjango2028Warning

from tests.host.settings import *  # noqa: F403

# Django warns once, when it loads this module, about every EMAIL_* setting it
# holds ("The EMAIL_HOST setting is deprecated. Migrate to MAILERS before
# Django 2028."): that is the configuration under test, so exactly that
# warning is expected here. Any other deprecation warning (one mailops would
# cause, say) still fails the run.
warnings.filterwarnings(
    "ignore",
    message=r"The EMAIL_\w+ setting is deprecated\. Migrate to MAILERS",
    category=RemovedInDjango2028Warning,
)

del MAILERS  # noqa: F821

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
# Port 9 (discard) until a test's SMTP server takes over (classic_smtp fixture).
EMAIL_PORT = 9
EMAIL_HOST_USER = "ops@host.example"
EMAIL_HOST_PASSWORD = "classic-secret"
EMAIL_USE_TLS = True
EMAIL_TIMEOUT = 5
DEFAULT_FROM_EMAIL = "ops@host.example"
