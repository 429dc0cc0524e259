"""A host project that is not ours: how a stranger would add mailops to a Django site.

Nothing here imports ``site_config``: a custom user model with a UUID key and
its own field names, the project's own ``AdminSite`` at ``/console/`` (the
default ``admin.site`` is not mounted), its own login page, and ``MAILERS``
written as a plain dict. ``pytest --ds=tests.host.settings tests/host`` runs
the host's tests (scripts/test does).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "host-tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "import_export",
    "anymail",
    "mailops",
    "tests.host.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.host.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite://:memory:"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.Member"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The host's own sign-in page, for members who never see the console.
LOGIN_URL = "login"

USE_TZ = True
TIME_ZONE = "Europe/Berlin"
STATIC_URL = "static/"

MAILERS = {
    "default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    "relay": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 5},
    },
}
DEFAULT_FROM_EMAIL = "site@host.example"
MAILOPS = {"DNS_NAMESERVERS": ["127.0.0.1:9"]}
ANYMAIL = {"WEBHOOK_SECRET": "hook:hook-pass-host"}
# As the docs' host-project page says: error pages mask secrets in any form.
DEFAULT_EXCEPTION_REPORTER_FILTER = "mailops.redaction.MailopsExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "mailops.redaction.MailopsExceptionReporter"
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
