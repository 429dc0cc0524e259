"""What every provider probe shares: results, the read-only HTTP call, its verdicts.

Anymail itself has no "verify credentials" call, so the connection check asks
each provider for something small that needs the same key the mailer sends
with, and that changes nothing on the provider's side. One module per
provider (like anymail's ``backends/``) says which call and how to read its
answer; :mod:`mailops.mailers.probes` maps backend classes to them.

Credentials, API URL and client parameters are read from the backend instance
(``mailers[alias]``), which anymail fills from ``OPTIONS`` and ``ANYMAIL``, so
the check talks to exactly what sending would. Nothing a provider answers is
stored as it is: success bodies are read for a name or two (Postmark's even
lists the server's tokens), and every error text is redacted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from mailops.mailers.info import mailer_options
from mailops.mailers.provider_errors import clean, provider_reason, unreachable_reason
from mailops.redaction import redact

# A provider's reason in a check's message is cut to this many characters.
REASON_LIMIT = 500


class ProbeStatus(StrEnum):
    # The provider accepted the credentials and nothing stands in the way of sending.
    AUTHENTICATED = "authenticated"
    # The provider did not accept the credentials (HTTP 401/403, bad AWS key).
    REFUSED = "refused"
    # No answer: connection refused, DNS, TLS, timeout.
    UNREACHABLE = "unreachable"
    # An answer, but not a usable one: unknown domain, missing permission, 5xx.
    API_ERROR = "api_error"
    # mailops has no probe for this provider.
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class ProbeResult:
    """What one provider API call showed (redacted, never a secret)."""

    status: ProbeStatus
    # The note on success, the reason otherwise.
    detail: str
    # "GET /server at api.postmarkapp.com (https)", "SES v2 GetAccount (eu-west-1)".
    call: str = ""
    http_status: int | None = None
    # None: the answer does not tell (unreachable, server error).
    authenticated: bool | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeRequest:
    url: str
    headers: dict[str, str]
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class Verdict:
    """What a provider's 2xx answer says about sending."""

    note: str = ""
    warnings: tuple[str, ...] = ()
    # The key works, but the provider would refuse to send (e.g. no mail.send scope).
    failure: str = ""
    # Not the provider's answer at all (an api_url that points at some other server).
    unrecognised: str = ""


@dataclass(frozen=True)
class HTTPProbe:
    """A read-only GET against a provider's REST API (through ``requests``)."""

    esp: str
    # The backend attribute that holds the key anymail sends with.
    key_attribute: str
    build: Callable[[Any, str, str], ProbeRequest]
    # Reads a 2xx JSON body.
    accept: Callable[[Any], Verdict]
    # Extra words for a 401/403 from this provider (lazy: translated when shown).
    refusal_hint: str | Promise = ""
    not_found_hint: str | Promise = ""


def requests_timeout(alias: str, backend: Any, default: float) -> Any:
    """The mailer's own timeout if it sets one; anymail's 30 s default is too patient."""
    anymail = getattr(settings, "ANYMAIL", {}) or {}
    configured = (
        "timeout" in mailer_options(alias)
        or "REQUESTS_TIMEOUT" in anymail
        or hasattr(settings, "ANYMAIL_REQUESTS_TIMEOUT")
    )
    return backend.timeout if configured else default


def run_http_probe(probe: HTTPProbe, alias: str, backend: Any, timeout: Any) -> ProbeResult:
    key = str(getattr(backend, probe.key_attribute, "") or "")
    secrets = [key]
    try:
        request = probe.build(backend, key, alias)
    except (AttributeError, TypeError, ValueError) as error:
        return ProbeResult(
            ProbeStatus.API_ERROR, redact(_("configuration: %(error)s") % {"error": error}, secrets)
        )
    call = redact(_describe_get(request.url), secrets)
    api = _("the %(provider)s API at %(host)s") % {
        "provider": probe.esp,
        "host": host_port(request.url),
    }
    try:
        # No redirects: a custom auth header would follow one to any host.
        response = requests.get(
            request.url,
            headers={"User-Agent": "mailops-connection-check", **request.headers},
            auth=request.auth,
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.Timeout:
        return ProbeResult(
            ProbeStatus.UNREACHABLE,
            _("unreachable: %(api)s did not answer within %(seconds)s")
            % {"api": api, "seconds": seconds_text(timeout)},
            call,
        )
    except requests.RequestException as error:
        return ProbeResult(
            ProbeStatus.UNREACHABLE,
            redact(
                _("unreachable: cannot reach %(api)s (%(reason)s)")
                % {"api": api, "reason": connection_reason(error)},
                secrets,
            ),
            call,
        )
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if 200 <= status < 300:
        verdict = probe.accept(body)
        if verdict.unrecognised:
            detail = _("API: the answer is not %(expected)s (HTTP %(status)s): check api_url") % {
                "expected": verdict.unrecognised,
                "status": status,
            }
            return ProbeResult(ProbeStatus.API_ERROR, redact(detail, secrets), call, status)
        if verdict.failure:
            return ProbeResult(
                ProbeStatus.API_ERROR,
                redact(
                    _("API: %(failure)s (HTTP %(status)s)")
                    % {"failure": verdict.failure, "status": status},
                    secrets,
                ),
                call,
                status,
                authenticated=True,
                warnings=verdict.warnings,
            )
        authenticated = (
            _("authenticated with the %(provider)s API (%(note)s)")
            if verdict.note
            else _("authenticated with the %(provider)s API")
        )
        return ProbeResult(
            ProbeStatus.AUTHENTICATED,
            authenticated % {"provider": probe.esp, "note": verdict.note},
            call,
            status,
            authenticated=True,
            warnings=verdict.warnings,
        )
    reason = provider_reason(body, response.text, limit=REASON_LIMIT) or _("no reason given")
    values = {"provider": probe.esp, "status": status, "reason": reason}
    if status in (401, 403):
        detail = (
            _("API: %(provider)s refused the credentials (HTTP %(status)s): %(reason)s") % values
        )
        if probe.refusal_hint:
            detail = _("%(reason)s (hint: %(hint)s)") % {
                "reason": detail,
                "hint": probe.refusal_hint,
            }
        return ProbeResult(
            ProbeStatus.REFUSED, redact(detail, secrets), call, status, authenticated=False
        )
    if 300 <= status < 400:
        where = host_port(response.headers.get("Location", "")) or _("elsewhere")
        detail = _(
            "API: unexpected redirect (HTTP %(status)s) to %(where)s: check the api_url option"
        ) % {"status": status, "where": where}
    elif status == 404 and probe.not_found_hint:
        detail = _("API: %(provider)s answered HTTP 404: %(reason)s (hint: %(hint)s)") % {
            **values,
            "hint": probe.not_found_hint,
        }
    elif status == 429:
        detail = (
            _("API: %(provider)s is rate-limiting this account (HTTP 429): %(reason)s") % values
        )
    elif status >= 500:
        detail = (
            _("API: %(provider)s had a problem (HTTP %(status)s): %(reason)s; try again later")
            % values
        )
    else:
        detail = _("API: %(provider)s answered HTTP %(status)s: %(reason)s") % values
    return ProbeResult(ProbeStatus.API_ERROR, redact(detail, secrets), call, status)


def connection_reason(error: BaseException) -> str:
    """Why a connection failed, in a few words (``connection refused``, ...)."""
    return unreachable_reason(error) or clean(str(error), REASON_LIMIT) or type(error).__name__


def _describe_get(url: str) -> str:
    """``GET /server at api.postmarkapp.com (https)``: never the URL's user or password.

    Path and host are kept apart because a configured ``api_url`` counts as a
    secret to :func:`redact` (it may carry credentials) and would be masked whole.
    """
    parts = urlsplit(url)
    return f"GET {parts.path or '/'} at {host_port(url)} ({parts.scheme})"


def host_port(url: str) -> str:
    """``host:port`` of ``url`` (never its user, password, path or query)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return ""
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def seconds_text(timeout: Any) -> str:
    if isinstance(timeout, tuple | list):
        timeout = max(t for t in timeout if t is not None)
    return f"{float(timeout):g}s"
