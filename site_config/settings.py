"""Settings of the mailops reference project, read from the environment (12-factor).

Nothing secret lives in this file or in the repository: mail credentials
come from ``MAILER_URL``-style variables (see the environment reference), parsed by
``mailops.mailer_urls`` so that no setting holds a whole URL with a password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from mailops.arrival.mailboxes import mailboxes_from_environ
from mailops.deliverability.nameservers import parse_nameservers
from mailops.mailer_urls import mailers_from_environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MAILOPS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true/false (1/0, yes/no, on/off), not {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or DEBUG=1 for local use)."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

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
    # The reference project's own admin (site_config/admin.py): the user admin
    # with the "Send test mail" action and user import/export.
    "site_config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Each user reads the site in their browser's language, among LANGUAGES.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "site_config.urls"
WSGI_APPLICATION = "site_config.wsgi.application"

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

if "DATABASE_URL" not in os.environ:
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'mailops.sqlite3'}"),
        conn_max_age=env_int("CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's server, a worker and a command may write at the same time.
    # A deferred SQLite transaction that reads and then writes fails at once
    # ("database is locked") when another process holds the write lock;
    # BEGIN IMMEDIATE waits for it (up to the timeout) instead.
    # WAL: readers do not block the writer, and with synchronous=NORMAL a
    # commit does not wait for the disk (a power cut may lose the last few,
    # never corrupt): each audited site mail and each delivery's per-message
    # progress mark (mailops.sending.wire) is a commit.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        **DATABASES["default"].get("OPTIONS", {}),
    }

# The debug page and error e-mails mask any value holding a URL with a
# password (MAILER_URL, DATABASE_URL in runserver's request META), not only
# settings whose name says "password", frame variables of any type whose
# repr holds a secret, and the exception messages (what a server echoed).
DEFAULT_EXCEPTION_REPORTER_FILTER = "mailops.redaction.MailopsExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "mailops.redaction.MailopsExceptionReporter"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en-us")
# The languages mailops has a catalogue for (mailops/locale): a browser asking for
# another gets LANGUAGE_CODE rather than an admin half in its language.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# django.contrib.auth.urls under /accounts/: ordinary users sign in there and
# land on their self-service page (/mail/); staff use /admin/ as before.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "mailops:self_service"

# --- HTTPS ----------------------------------------------------------------------
# Production-safe defaults whenever DEBUG is off (the local demo runs with
# DEBUG=1 over http://127.0.0.1 and gets none of them); each is overridable.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Off unless asked for: the http -> https redirect is often the proxy's job,
# and behind a proxy that terminates TLS Django sees plain http (and would
# redirect forever) unless SECURE_PROXY_SSL_HEADER names the proxy's header.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
if os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    # e.g. HTTP_X_FORWARDED_PROTO; only safe when the proxy always sets or strips it.
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"].strip(), "https")

# ``manage.py loaddata demo`` finds fixtures/demo.json.
FIXTURE_DIRS = [BASE_DIR / "fixtures"]

# --- Mail -----------------------------------------------------------------
_mail_env = mailers_from_environ(os.environ, outbox_dir=VAR_DIR / "outbox")
MAILERS = _mail_env.mailers
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "mailops@localhost")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

_from_emails = dict(_mail_env.from_emails)
if "gmail" in MAILERS and "DEFAULT_FROM_EMAIL" not in os.environ:
    # Gmail rewrites From to the signed-in account anyway; say so up front.
    _from_emails.setdefault("gmail", MAILERS["gmail"]["OPTIONS"]["username"])

MAILOPS = {
    "DEFAULT_MAILER": os.environ.get("MAILOPS_DEFAULT_MAILER", "default"),
    "FROM_EMAILS": _from_emails,
    # ?rate= and ?daily_quota= on a mailer URL; GMAIL_DAILY_QUOTA for the preset.
    "THROTTLE": _mail_env.throttle,
    # ?dkim_selector= on a mailer URL: what manage.py maildoctor checks for DKIM.
    "DKIM_SELECTORS": _mail_env.dkim_selectors,
    # MAILOPS_DNS_NAMESERVERS=ip[:port],...: the DNS servers maildoctor asks.
    "DNS_NAMESERVERS": env_list("MAILOPS_DNS_NAMESERVERS"),
    # Proof of arrival: MAILBOX_URL, MAILBOX_<ALIAS>_URL and the Gmail preset
    # (imaps://imap.gmail.com with the same App Password). Parsed, never kept as URLs.
    "MAILBOXES": mailboxes_from_environ(os.environ, mailers=MAILERS),
    # Bearer token for /mail/health/ and /mail/metrics; unset refuses every request.
    "HEALTH_TOKEN": os.environ.get("MAILOPS_HEALTH_TOKEN", "").strip(),
    # Log every mail the site sends (password resets, ...), not only test mails.
    "AUDIT_ALL_MAIL": env_bool("MAILOPS_AUDIT_ALL_MAIL"),
    # Keep those mails' bodies (off: reset links and one-time codes are secrets).
    "STORE_SITE_MAIL_BODY": env_bool("MAILOPS_STORE_SITE_MAIL_BODY"),
}
try:
    parse_nameservers(env_list("MAILOPS_DNS_NAMESERVERS"))
except ValueError as _error:
    raise ImproperlyConfigured(f"MAILOPS_DNS_NAMESERVERS: {_error}") from None

# Tracking webhooks (/anymail/<esp>/tracking/) are protected by basic auth
# "user:password" in ANYMAIL_WEBHOOK_SECRET; Mailgun also signs its payloads.
ANYMAIL = {
    "WEBHOOK_SECRET": os.environ.get("ANYMAIL_WEBHOOK_SECRET", ""),
}
if os.environ.get("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY"):
    # Only when set: an empty signing key would let anyone forge a signature.
    ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"] = os.environ["ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY"]

# --- Tasks (queued delivery) -------------------------------------------------
# TASKS_BACKEND picks who delivers queued batches:
#   immediate  Django's ImmediateBackend: inside the request/command (default)
#   database   django-tasks-db: rows in this database, `manage.py db_worker`
#   celery     Celery with CELERY_BROKER_URL (Redis), `DJANGO_SETTINGS_MODULE=site_config.settings
#              celery -A mailops.task_backends.celery_app worker`
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "immediate").strip().lower()
TASKS: dict[str, dict[str, Any]]
if TASKS_BACKEND == "immediate":
    TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
elif TASKS_BACKEND == "database":
    INSTALLED_APPS.append("django_tasks_db")
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif TASKS_BACKEND == "celery":
    # The broker URL (it may hold a password) is read from CELERY_BROKER_URL by
    # mailops.task_backends.celery_app itself, never kept in a setting.
    CELERY_TASK_SERIALIZER = "json"
    CELERY_ACCEPT_CONTENT = ["json"]
    TASKS = {
        "default": {
            "BACKEND": "mailops.task_backends.celery.CeleryBackend",
            "OPTIONS": {"QUEUE": os.environ.get("CELERY_QUEUE", "mailops")},
        }
    }
else:
    raise ImproperlyConfigured(
        f"TASKS_BACKEND must be immediate, database or celery, not {TASKS_BACKEND!r}"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Servers echo credentials in their errors, and Django's own loggers
    # (django.contrib.auth on a failed password-reset mail, django.request)
    # write those errors raw: every handler masks them on the way out.
    "filters": {
        "redact_secrets": {"()": "mailops.redaction.RedactSecretsFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
        # Django's default error e-mails to ADMINS, with the same filter.
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Django's loggers reach the console through the root; Django's default
        # handlers for them (no filter) are replaced.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "mailops": {"handlers": [], "level": os.environ.get("MAILOPS_LOG_LEVEL", "INFO")},
        # Django logs every task start and finish at INFO; that is noise here.
        "django.tasks": {"handlers": [], "level": "WARNING"},
    },
}
