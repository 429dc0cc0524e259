"""Which mailers Django has: the one place mailops reads ``MAILERS`` (or its absence).

Django 6.1 has two configurations (until 7.0):

* ``MAILERS`` defined: every alias it names (``mail.mailers.settings``);
* ``MAILERS`` not defined: one mailer, ``default``, which Django builds from
  the deprecated ``EMAIL_BACKEND``/``EMAIL_HOST``/... settings (the "classic"
  settings of nearly every existing project).

Everything in mailops that asks "which aliases exist?" or "what does alias X
say?" asks here, so checks, the Mailers page, ``--check``, the doctor,
health and metrics see the classic ``default`` mailer like any other.

Reading the classic settings: ``settings.EMAIL_HOST`` read from mailops emits
Django's ``RemovedInDjango2028Warning`` (Django warns about every use outside
its own modules). So mailops lets Django read them, the way Django does
itself: ``mailers["default"]`` builds the backend (no connection is opened)
and the backend's attributes are what Django will use. That is also exactly
Django's own mapping (``EMAIL_PORT`` defaults to 25 whatever the TLS mode,
unlike a ``MAILERS`` entry), not a copy of it. A project that sets neither
``MAILERS`` nor any ``EMAIL_*`` setting gets Django's documented defaults,
read from ``django.conf.global_settings``: building the mailer there would
make Django warn that "Django 2028 will not have a default mailer", from a
``manage.py check`` that sends nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from django.conf import DEPRECATED_EMAIL_SETTINGS, global_settings, settings
from django.core.mail import mailers
from django.core.mail.handler import DEFAULT_MAILER_ALIAS
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

# For messages only: the classic setting behind each SMTP backend option.
CLASSIC_SETTING_NAMES = {
    "BACKEND": "EMAIL_BACKEND",
    "host": "EMAIL_HOST",
    "port": "EMAIL_PORT",
    "username": "EMAIL_HOST_USER",
    "password": "EMAIL_HOST_PASSWORD",
    "use_tls": "EMAIL_USE_TLS",
    "use_ssl": "EMAIL_USE_SSL",
    "timeout": "EMAIL_TIMEOUT",
    "ssl_keyfile": "EMAIL_SSL_KEYFILE",
    "ssl_certfile": "EMAIL_SSL_CERTFILE",
    "file_path": "EMAIL_FILE_PATH",
}

# Backend attributes that hold what an OPTIONS entry would (SMTP, file-based).
_BACKEND_ATTRIBUTES = (
    "host",
    "port",
    "username",
    "password",
    "use_tls",
    "use_ssl",
    "timeout",
    "ssl_keyfile",
    "ssl_certfile",
    "file_path",
)


@dataclass(frozen=True)
class ClassicMailer:
    """The ``default`` mailer as Django builds it from the classic settings."""

    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    # Why Django could not build it (bad EMAIL_BACKEND, TLS and SSL both on).
    error: str = ""
    # EMAIL_PORT is set in settings (else Django uses 25, whatever the TLS mode).
    port_set: bool = False

    def entry(self) -> dict[str, Any]:
        """The ``MAILERS``-shaped entry (``BACKEND``, ``OPTIONS``)."""
        return {"BACKEND": self.backend, "OPTIONS": dict(self.options)}


def uses_classic_settings() -> bool:
    """``MAILERS`` is not defined: Django builds ``default`` from ``EMAIL_*``."""
    # Django's own test (MailersHandler._is_configured), in public terms.
    return not hasattr(settings, "MAILERS")


def mailer_aliases() -> list[str]:
    """The aliases Django can build, in settings order; builds nothing."""
    if uses_classic_settings():
        return [DEFAULT_MAILER_ALIAS]
    return list(_mailers_dict())


def mailers_setting() -> dict[str, Any]:
    """Every mailer as a ``MAILERS``-shaped dict ``{alias: {"BACKEND", "OPTIONS"}}``.

    Under the classic settings this builds the ``default`` backend to read
    it (no connection): use :func:`mailer_aliases` to only list aliases.
    """
    if uses_classic_settings():
        return {DEFAULT_MAILER_ALIAS: classic_mailer().entry()}
    return _mailers_dict()


@functools.cache
def classic_mailer() -> ClassicMailer:
    """What Django makes of the classic settings (call only when :func:`uses_classic_settings`).

    Kept until a mail setting changes: redaction asks for the mailers'
    secrets on every log record, and building the backend each time would
    cost a classic-settings site more per message than a ``MAILERS`` one.
    """
    port_set = _is_set("EMAIL_PORT")
    if not any(_is_set(name) for name in DEPRECATED_EMAIL_SETTINGS):
        return _django_defaults()
    try:
        backend = mailers[DEFAULT_MAILER_ALIAS]
    except (ImportError, ValueError, TypeError) as error:
        # ImportError: EMAIL_BACKEND; ValueError: EMAIL_USE_TLS and EMAIL_USE_SSL.
        return ClassicMailer(backend="", error=str(error), port_set=port_set)
    cls = type(backend)
    options = {
        name: getattr(backend, name)
        for name in _BACKEND_ATTRIBUTES
        if name in getattr(backend, "__dict__", {})
    }
    return ClassicMailer(f"{cls.__module__}.{cls.__qualname__}", options, port_set=port_set)


def _forget_classic_mailer(*, setting: str, **kwargs: Any) -> None:
    """Receiver for ``setting_changed`` (args: ``setting``, ``value``, ``enter``)."""
    if setting == "MAILERS" or setting in DEPRECATED_EMAIL_SETTINGS:
        classic_mailer.cache_clear()


setting_changed.connect(_forget_classic_mailer, dispatch_uid="mailops.mailers.classic_mailer")


def setting_name(alias: str, option: str) -> str:
    """Where ``option`` of ``alias`` is set: ``MAILERS['x']['OPTIONS']['host']``, ``EMAIL_HOST``."""
    if uses_classic_settings() and alias == DEFAULT_MAILER_ALIAS:
        return CLASSIC_SETTING_NAMES.get(option, f"EMAIL_{option.upper()}")
    if option == "BACKEND":
        return f"MAILERS[{alias!r}]['BACKEND']"
    return f"MAILERS[{alias!r}]['OPTIONS'][{option!r}]"


def _is_set(name: str) -> bool:
    """The setting is written in settings (Django's documented ``is_overridden``; no warning)."""
    # django-stubs types settings as Settings, which lacks is_overridden.
    return bool(settings.is_overridden(name))  # type: ignore[misc]


def _mailers_dict() -> dict[str, Any]:
    configured = mailers.settings
    return configured if isinstance(configured, dict) else {}


def _django_defaults() -> ClassicMailer:
    backend = global_settings.EMAIL_BACKEND
    options: dict[str, Any] = {}
    if backend == "django.core.mail.backends.smtp.EmailBackend":
        options = {
            option: getattr(global_settings, name)
            for option, name in CLASSIC_SETTING_NAMES.items()
            if option in _BACKEND_ATTRIBUTES and option != "file_path"
        }
    try:
        import_string(backend)
    except ImportError as error:  # pragma: no cover - Django's own default
        return ClassicMailer(backend, error=str(error))
    return ClassicMailer(backend, options)
