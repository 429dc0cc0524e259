"""What each mailer's configuration says, read without instantiating anything.

The configuration comes from :mod:`mailops.mailers.registry` (``MAILERS``, or
the ``default`` mailer Django builds from the classic ``EMAIL_*`` settings).
System checks, the connection check and the admin "Mailers" page all need
the same facts (which kind of transport, host, port, TLS mode, user). They
are read from the settings dict, never from a backend instance: building a
backend can fail (Django raises ``InvalidMailer`` when STARTTLS and implicit
TLS are both on) or create directories, and a check must report that, not
trip over it. A :class:`MailerInfo` never holds a password or any other
secret option, so it is safe to render.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.utils.functional import Promise
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.conf import get_setting
from mailops.exceptions import UnknownMailer
from mailops.mailers.registry import (
    classic_mailer,
    mailer_aliases,
    mailers_setting,
    uses_classic_settings,
)

DEFAULT_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

# Backends that deliver nowhere beyond this machine (console, memory, files).
LOCAL_BACKENDS = frozenset(
    {
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
        "mailops.backends.outbox.EmailBackend",
        "anymail.backends.console.EmailBackend",
        "anymail.backends.test.EmailBackend",
    }
)


# What each local backend does with mail, for people (the Mailers page, choices).
LOCAL_DESCRIPTIONS = {
    "django.core.mail.backends.console.EmailBackend": gettext_lazy("prints mail"),
    "django.core.mail.backends.locmem.EmailBackend": gettext_lazy("keeps mail in memory"),
    "django.core.mail.backends.filebased.EmailBackend": gettext_lazy("writes mail to files"),
    "django.core.mail.backends.dummy.EmailBackend": gettext_lazy("discards mail"),
    "mailops.backends.outbox.EmailBackend": gettext_lazy("writes .eml files"),
    "anymail.backends.console.EmailBackend": gettext_lazy("prints mail"),
    "anymail.backends.test.EmailBackend": gettext_lazy("keeps mail in memory"),
}


class MailerKind(StrEnum):
    SMTP = "smtp"
    PROVIDER = "provider"  # a django-anymail ESP backend
    LOCAL = "local"
    OTHER = "other"  # a backend mailops knows nothing about
    BROKEN = "broken"  # BACKEND cannot be imported


class TLSMode(StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    NONE = "none"
    CONFLICT = "conflict"  # both use_tls and use_ssl: Django refuses the mailer


TLS_LABELS: dict[TLSMode, str | Promise] = {
    TLSMode.STARTTLS: "STARTTLS",
    TLSMode.IMPLICIT: gettext_lazy("implicit TLS"),
    TLSMode.NONE: gettext_lazy("no TLS"),
    TLSMode.CONFLICT: gettext_lazy("STARTTLS and implicit TLS (conflict)"),
}


@dataclass(frozen=True)
class MailerInfo:
    """The non-secret facts about one ``MAILERS`` alias."""

    alias: str
    backend: str
    kind: MailerKind
    host: str = ""
    # The port Django will use: the configured one, else 465/587/25 by TLS mode.
    port: int | None = None
    port_configured: bool = False
    tls_mode: TLSMode | None = None
    username: str = ""
    timeout: float | None = None
    # Anymail's name for the provider ("Postmark"), for PROVIDER mailers.
    esp: str = ""
    # Why BACKEND could not be imported, for BROKEN mailers.
    import_error: str = ""
    # Built by Django from the classic EMAIL_* settings (no MAILERS).
    classic: bool = False

    @property
    def tls_label(self) -> str:
        return str(TLS_LABELS[self.tls_mode]) if self.tls_mode else ""

    @property
    def address(self) -> str:
        """``host:port`` for SMTP mailers, else an empty string."""
        if self.kind != MailerKind.SMTP or not self.host:
            return ""
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def loopback(self) -> bool:
        """The SMTP host is this machine (a local relay or mail catcher)."""
        return is_loopback(self.host)

    @property
    def delivers_real_mail(self) -> bool:
        """Mail sent through it can reach real inboxes."""
        if self.kind == MailerKind.PROVIDER:
            return True
        return self.kind == MailerKind.SMTP and bool(self.host) and not self.loopback

    @property
    def kind_label(self) -> str:
        """The transport in a word or two: ``smtp``, ``anymail Postmark``, ``console``."""
        if self.kind == MailerKind.SMTP:
            return "smtp"
        if self.kind == MailerKind.PROVIDER:
            return f"anymail {self.esp}"
        return self.backend.rsplit(".", 2)[-2] if "." in self.backend else self.backend

    @property
    def local_description(self) -> str:
        """What a local mailer does with mail ("prints mail"), else an empty string."""
        if self.kind != MailerKind.LOCAL:
            return ""
        return str(LOCAL_DESCRIPTIONS.get(self.backend, _("delivers nowhere beyond this machine")))

    def human_description(self) -> str:
        """What the mailer is, for people, never a secret.

        ``console (prints mail)``, ``SMTP smtp.gmail.com:587, STARTTLS``,
        ``Postmark API``; other backends by their module and class.
        """
        if self.kind == MailerKind.SMTP:
            address = self.address or _("no host")
            return f"SMTP {address}, {self.tls_label}" if self.tls_label else f"SMTP {address}"
        if self.kind == MailerKind.PROVIDER:
            return _("%(provider)s API") % {"provider": self.esp}
        if self.kind == MailerKind.LOCAL:
            return f"{self.kind_label} ({self.local_description})"
        if self.kind == MailerKind.BROKEN:
            return _("%(backend)s (cannot be imported)") % {"backend": self.backend}
        return ".".join(self.backend.split(".")[-2:])

    def describe(self) -> str:
        """A short, secret-free label: ``smtp 127.0.0.1:587``, ``anymail Postmark``."""
        if self.kind == MailerKind.SMTP:
            return f"smtp {self.address or _('(no host)')}"
        return self.kind_label


def is_loopback(host: str) -> bool:
    host = host.strip().lower().rstrip(".").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def backend_path(alias: str) -> str:
    """The dotted backend path configured for ``alias`` (for the log row)."""
    config = mailers_setting().get(alias) or {}
    return str(
        config.get("BACKEND", DEFAULT_BACKEND) if isinstance(config, dict) else DEFAULT_BACKEND
    )


def mailer_options(alias: str) -> dict[str, Any]:
    """The raw ``OPTIONS`` of ``alias`` (may hold secrets: never render them)."""
    config = mailers_setting().get(alias) or {}
    options = config.get("OPTIONS") if isinstance(config, dict) else None
    return options if isinstance(options, dict) else {}


def resolve_mailer(using: str | None) -> str:
    """The alias to send through (``using``, else ``MAILOPS["DEFAULT_MAILER"]``).

    Raises :class:`~mailops.exceptions.UnknownMailer` when ``MAILERS`` does not define it.
    """
    alias = using or get_setting("DEFAULT_MAILER")
    if alias not in mailer_aliases():
        raise UnknownMailer(str(alias), mailer_aliases())
    return str(alias)


def mailer_info(alias: str) -> MailerInfo:
    """The facts about ``alias``; ``KeyError`` when MAILERS does not define it."""
    if alias not in mailer_aliases():
        raise KeyError(alias)
    if uses_classic_settings():
        return _classic_info(alias)
    backend = backend_path(alias)
    options = mailer_options(alias)
    try:
        backend_class = import_string(backend)
    except ImportError as error:
        return MailerInfo(alias, backend, MailerKind.BROKEN, import_error=str(error))
    kind = _kind(backend, backend_class)
    if kind == MailerKind.SMTP:
        return _smtp_info(alias, backend, options)
    if kind == MailerKind.PROVIDER:
        esp = str(getattr(backend_class, "esp_name", "") or backend.split(".")[-2])
        return MailerInfo(alias, backend, kind, esp=esp)
    return MailerInfo(alias, backend, kind)


def configured_mailers() -> list[MailerInfo]:
    """:func:`mailer_info` for every alias, in settings order."""
    return [mailer_info(alias) for alias in mailer_aliases()]


def _classic_info(alias: str) -> MailerInfo:
    """The ``default`` mailer Django builds from ``EMAIL_*``: as Django built it."""
    classic = classic_mailer()
    if classic.error:
        return MailerInfo(
            alias, classic.backend, MailerKind.BROKEN, import_error=classic.error, classic=True
        )
    backend_class = import_string(classic.backend)
    kind = _kind(classic.backend, backend_class)
    if kind == MailerKind.SMTP:
        # port is what Django took: EMAIL_PORT, 25 unless set (not chosen by TLS
        # mode as under MAILERS); port_configured says whether EMAIL_PORT is set.
        info = _smtp_info(alias, classic.backend, classic.options)
        return replace(info, port_configured=classic.port_set, classic=True)
    if kind == MailerKind.PROVIDER:
        esp = str(getattr(backend_class, "esp_name", "") or classic.backend.split(".")[-2])
        return MailerInfo(alias, classic.backend, kind, esp=esp, classic=True)
    return MailerInfo(alias, classic.backend, kind, classic=True)


def _kind(path: str, backend_class: Any) -> MailerKind:
    if not isinstance(backend_class, type):
        return MailerKind.OTHER
    if issubclass(backend_class, SMTPBackend):
        return MailerKind.SMTP
    if path in LOCAL_BACKENDS or _is_local_class(backend_class):
        return MailerKind.LOCAL
    try:
        from anymail.backends.base import AnymailBaseBackend
    except ImportError:  # pragma: no cover - anymail is a hard dependency
        return MailerKind.OTHER
    if issubclass(backend_class, AnymailBaseBackend):
        return MailerKind.PROVIDER
    return MailerKind.OTHER


def _is_local_class(backend_class: type) -> bool:
    for path in LOCAL_BACKENDS:
        try:
            local = import_string(path)
        except ImportError:
            continue
        if issubclass(backend_class, local):
            return True
    return False


def _smtp_info(alias: str, backend: str, options: dict[str, Any]) -> MailerInfo:
    use_tls, use_ssl = bool(options.get("use_tls")), bool(options.get("use_ssl"))
    if use_tls and use_ssl:
        tls_mode = TLSMode.CONFLICT
    elif use_ssl:
        tls_mode = TLSMode.IMPLICIT
    elif use_tls:
        tls_mode = TLSMode.STARTTLS
    else:
        tls_mode = TLSMode.NONE
    port = _int_or_none(options.get("port"))
    configured = port is not None
    if port is None:
        # What Django's SMTP backend picks when OPTIONS has no port.
        port = 465 if use_ssl else 587 if use_tls else 25
    timeout = options.get("timeout")
    return MailerInfo(
        alias,
        backend,
        MailerKind.SMTP,
        host=str(options.get("host") or ""),
        port=port,
        port_configured=configured,
        tls_mode=tls_mode,
        username=str(options.get("username") or ""),
        timeout=float(timeout) if isinstance(timeout, int | float) else None,
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
