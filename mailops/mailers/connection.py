"""Check that a mailer can connect, without sending anything; log the outcome.

For an SMTP mailer :func:`verify_connection` does what Django's backend does
before it sends (connect, EHLO, STARTTLS when configured, AUTH when a user
and password are set) and then QUITs, reporting the negotiated TLS version
or the server's exact refusal. Local mailers (console, memory, files) have
nothing to connect to: the check says so (outcome ``local``) and logs
nothing, since no connection was verified; a file mailer whose directory
cannot be written is a failure. For an anymail provider :mod:`mailops.mailers.probes`
makes one authenticated, read-only API call with the mailer's own key.

Each check that verified something writes one ``MailLog`` row (status
``checked`` or ``check_failed``, trigger ``check``), so the log shows when a
mailer was last verified. A mailer that cannot be checked (a provider without
a probe, an unknown backend) is reported as ``unsupported``: not a failure,
and not logged, because nothing was verified and the mail log's "last check"
must not claim otherwise. This module is the only place that creates a row
that is not a message.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import mailers
from django.core.mail.utils import DNS_NAME
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from mailops.conf import stored_language
from mailops.exceptions import UnknownMailer
from mailops.mailers.errors import describe_failure, smtp_state
from mailops.mailers.info import MailerInfo, MailerKind, mailer_info
from mailops.mailers.probes import ProbeStatus, probe_provider, supports_probe
from mailops.mailers.registry import mailer_aliases
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.redaction import redact

# Seconds to wait for a server when the mailer sets no timeout (mailops.W005):
# a check must end even when the server never answers.
CHECK_TIMEOUT = 10.0


class CheckOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    # Nothing could be verified (a provider without a probe, an unknown backend):
    # reported, but neither a failure nor logged.
    UNSUPPORTED = "unsupported"
    # A local mailer (console, memory, files): nothing to connect to. Neither a
    # pass nor a failure, and not logged: no "last check" may claim a connection.
    LOCAL = "local"


@dataclass(frozen=True)
class CheckResult:
    """What one connection check found out about one mailer (never a secret)."""

    alias: str
    backend: str
    kind: str
    outcome: CheckOutcome
    # "smtp host:port", "anymail Postmark", "console".
    target: str
    host: str = ""
    port: int | None = None
    tls_mode: str = ""
    tls_version: str = ""
    # None: the check did not get as far as trying.
    reachable: bool | None = None
    # None: the mailer has no user and password, so nothing to authenticate.
    authenticated: bool | None = None
    username: str = ""
    # The refusal: stage and reason, redacted, with a hint for known SMTP codes.
    error: str = ""
    smtp_code: int | None = None
    # Providers: the API call made ("GET /server at api.postmarkapp.com (https)"), its status.
    api_call: str = ""
    http_status: int | None = None
    warnings: tuple[str, ...] = ()
    note: str = ""
    log_id: int | None = None
    details: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """The check verified the mailer."""
        return self.outcome == CheckOutcome.PASSED

    @property
    def failed(self) -> bool:
        """The check found a problem (an unsupported check or a local mailer is not one)."""
        return self.outcome == CheckOutcome.FAILED

    def summary(self) -> str:
        """One line: target, TLS, authentication, or the refusal."""
        if self.outcome == CheckOutcome.LOCAL:
            # "nothing to connect to: the console mailer prints mail" names it already.
            return self.note
        parts = [self.target]
        if self.tls_mode:
            parts.append(f"{self.tls_mode} {self.tls_version}".strip())
        if self.error:
            parts.append(self.error)
        else:
            if self.authenticated and self.username:
                parts.append(_("authenticated as %(username)s") % {"username": self.username})
            elif self.kind == MailerKind.SMTP and self.reachable:
                parts.append(_("no AUTH configured"))
            if self.note:
                parts.append(self.note)
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("details")
        data["ok"] = self.ok
        data["warnings"] = list(self.warnings)
        return data


def verify_connection(
    alias: str, *, triggered_by: Any = None, trigger: str = MailTrigger.CHECK
) -> CheckResult:
    """Check ``alias`` without sending and log the outcome as one ``MailLog`` row.

    Raises ``UnknownMailer`` when MAILERS does not define ``alias``.
    """
    if alias not in mailer_aliases():
        raise UnknownMailer(alias, mailer_aliases())
    # The outcome is stored in a row: written in the site's language (see stored_language).
    with stored_language():
        return _verify_connection(alias, triggered_by=triggered_by, trigger=trigger)


def _verify_connection(alias: str, *, triggered_by: Any, trigger: str) -> CheckResult:
    info = mailer_info(alias)
    if info.kind == MailerKind.SMTP:
        result = _check_smtp(info)
    elif info.kind == MailerKind.LOCAL:
        result = _check_local(info)
    elif info.kind == MailerKind.PROVIDER:
        result = _check_provider(info)
    elif info.kind == MailerKind.BROKEN:
        result = _result(
            info,
            CheckOutcome.FAILED,
            error=_("configuration: BACKEND cannot be imported (%(error)s)")
            % {"error": redact(info.import_error)},
        )
    else:
        result = _result(
            info,
            CheckOutcome.UNSUPPORTED,
            note=_(
                "connection check not supported for backend %(backend)s: "
                "send a test mail instead (sendtestmail ADDRESS --using %(alias)s)"
            )
            % {"backend": info.backend, "alias": alias},
        )
    if result.outcome in (CheckOutcome.UNSUPPORTED, CheckOutcome.LOCAL):
        return result
    log = MailLog.objects.create(
        status=MailStatus.CHECKED if result.ok else MailStatus.CHECK_FAILED,
        # A check has no recipient; the subject says what was checked.
        recipient="",
        mailer=alias,
        backend=info.backend,
        subject=redact(_("Connection check: %(summary)s") % {"summary": result.summary()})[:998],
        body=redact("\n".join(result.details)),
        error=result.error,
        smtp_code=result.smtp_code,
        trigger=trigger,
        triggered_by=triggered_by,
    )
    return replace(result, log_id=log.pk)


def can_verify(info: MailerInfo) -> bool:
    """Whether :func:`verify_connection` can check this mailer (else: ``unsupported``)."""
    if info.kind == MailerKind.PROVIDER:
        try:
            return supports_probe(import_string(info.backend))
        except ImportError:
            return False
    return info.kind != MailerKind.OTHER


def verify_connections(
    aliases: Iterable[str] | None = None,
    *,
    triggered_by: Any = None,
    trigger: str = MailTrigger.CHECK,
) -> list[CheckResult]:
    """:func:`verify_connection` for each alias (every configured one by default)."""
    selected = mailer_aliases() if aliases is None else list(aliases)
    return [
        verify_connection(alias, triggered_by=triggered_by, trigger=trigger) for alias in selected
    ]


def _result(info: MailerInfo, outcome: CheckOutcome, **fields: Any) -> CheckResult:
    result = CheckResult(
        alias=info.alias,
        backend=info.backend,
        kind=str(info.kind),
        outcome=outcome,
        target=info.describe(),
        host=info.host,
        port=info.port,
        tls_mode=info.tls_label,
        username=info.username,
        **fields,
    )
    details = [
        _("Mailer: %(alias)s (%(backend)s)") % {"alias": info.alias, "backend": info.backend},
        _("Outcome: %(outcome)s") % {"outcome": outcome},
        result.summary(),
    ]
    if result.api_call:
        status = f" -> HTTP {result.http_status}" if result.http_status else ""
        details.append(_("API call: %(call)s") % {"call": f"{result.api_call}{status}"})
    details += [_("Warning: %(warning)s") % {"warning": warning} for warning in result.warnings]
    return replace(result, details=tuple(details))


def _configuration_error(error: Exception) -> str:
    return _("configuration: %(error)s") % {"error": redact(str(error))}


def _check_smtp(info: MailerInfo) -> CheckResult:
    try:
        backend: Any = mailers[info.alias]
    except ImproperlyConfigured as error:
        return _result(info, CheckOutcome.FAILED, error=_configuration_error(error))
    password = str(backend.password or "")
    warnings: list[str] = []
    timeout = backend.timeout
    if timeout is None:
        timeout = CHECK_TIMEOUT
        warnings.append(
            _("the mailer has no timeout (mailops.W005); the check waited at most %(seconds)gs")
            % {"seconds": timeout}
        )
    stage = "connect"
    reachable = False
    tls_version = ""
    authenticated: bool | None = None
    connection: smtplib.SMTP | None = None
    try:
        if backend.use_ssl:
            connection = smtplib.SMTP_SSL(
                backend.host,
                backend.port,
                local_hostname=DNS_NAME.get_fqdn(),
                timeout=timeout,
                context=backend.ssl_context,
            )
            tls_version = _tls_version(connection)
        else:
            connection = smtplib.SMTP(
                backend.host, backend.port, local_hostname=DNS_NAME.get_fqdn(), timeout=timeout
            )
        reachable = True
        stage = "EHLO"
        connection.ehlo_or_helo_if_needed()
        offers_starttls = connection.has_extn("starttls")
        # A missing STARTTLS or AUTH raises SMTPNotSupportedError before anything
        # is sent; describe_failure() gives the same advice as for a send.
        if backend.use_tls and not backend.use_ssl:
            stage = "STARTTLS"
            connection.starttls(context=backend.ssl_context)
            tls_version = _tls_version(connection)
            connection.ehlo()
        elif not backend.use_ssl and offers_starttls:
            warnings.append(
                _(
                    "the server offers STARTTLS but the mailer does not use TLS: mail "
                    "and password cross the network unencrypted. Use smtp+tls:// (use_tls=True)"
                )
            )
        if backend.username and password:
            stage = "AUTH"
            connection.login(backend.username, password)
            authenticated = True
        elif backend.username:
            warnings.append(
                _("the mailer has a username but no password, so Django does not authenticate")
            )
        _quit(connection)
    except (smtplib.SMTPException, OSError) as error:
        failure = describe_failure(error, smtp=smtp_state(connection))
        return _result(
            info,
            CheckOutcome.FAILED,
            reachable=reachable,
            tls_version=tls_version,
            authenticated=False if stage == "AUTH" else None,
            error=redact(f"{stage}: {failure.reason}", [password]),
            smtp_code=failure.smtp_code,
            warnings=tuple(warnings),
        )
    finally:
        if connection is not None:
            if connection.sock is not None:
                # A failed check still says goodbye (else Postfix logs "lost
                # connection after AUTH"); a QUIT that fails changes no outcome.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    connection.quit()
            connection.close()
    return _result(
        info,
        CheckOutcome.PASSED,
        reachable=True,
        tls_version=tls_version,
        authenticated=authenticated,
        warnings=tuple(warnings),
    )


def _tls_version(connection: smtplib.SMTP) -> str:
    sock = connection.sock
    version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    return version or ""


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (smtplib.SMTPServerDisconnected, ssl.SSLError):
        # Everything that mattered already worked; a server that hangs up
        # before answering QUIT does not make the check fail.
        connection.close()


def _check_local(info: MailerInfo) -> CheckResult:
    try:
        backend = mailers[info.alias]
    except ImproperlyConfigured as error:
        return _result(info, CheckOutcome.FAILED, error=_configuration_error(error))
    note = nothing_to_connect_to(info)
    directory = getattr(backend, "directory", None) or getattr(backend, "file_path", None)
    if directory:
        path = Path(directory)
        if not os.access(path, os.W_OK):
            return _result(
                info, CheckOutcome.FAILED, error=_("cannot write to %(path)s") % {"path": path}
            )
        note = _("%(note)s in %(path)s") % {"note": note, "path": path}
    return _result(info, CheckOutcome.LOCAL, note=note)


def nothing_to_connect_to(info: MailerInfo) -> str:
    """``nothing to connect to: the console mailer prints mail``."""
    values = {"kind": info.kind_label, "does": info.local_description}
    return _("nothing to connect to: the %(kind)s mailer %(does)s") % values


def _check_provider(info: MailerInfo) -> CheckResult:
    try:
        backend = mailers[info.alias]
    except ImproperlyConfigured as error:
        return _result(info, CheckOutcome.FAILED, error=_configuration_error(error))
    probe = probe_provider(info.alias, backend, default_timeout=CHECK_TIMEOUT)
    common: dict[str, Any] = {
        "api_call": probe.call,
        "http_status": probe.http_status,
        "authenticated": probe.authenticated,
        "warnings": probe.warnings,
    }
    if probe.status == ProbeStatus.AUTHENTICATED:
        return _result(info, CheckOutcome.PASSED, reachable=True, note=probe.detail, **common)
    if probe.status == ProbeStatus.UNSUPPORTED:
        return _result(info, CheckOutcome.UNSUPPORTED, note=probe.detail, **common)
    return _result(
        info,
        CheckOutcome.FAILED,
        # An HTTP status means the API answered, whatever it said; a
        # configuration error means it was never tried.
        reachable=(
            True
            if probe.http_status is not None
            else False
            if probe.status == ProbeStatus.UNREACHABLE
            else None
        ),
        error=probe.detail,
        **common,
    )
