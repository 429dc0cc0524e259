"""Verify an anymail provider's credentials with one read-only API call.

Anymail itself has no "verify credentials" call, so the connection check asks
each provider for something small that needs the same key the mailer sends
with, and that changes nothing on the provider's side:

- Postmark: ``GET {api_url}server`` with the ``X-Postmark-Server-Token`` header;
- Mailgun: ``GET {api_url, v3 -> v4}domains/{sender domain}``, basic auth ``api:key``;
- SendGrid: ``GET {api_url}scopes`` with ``Authorization: Bearer key``;
- Brevo: ``GET {api_url}account`` with the ``api-key`` header;
- Amazon SES: SES v2 ``GetAccount`` through boto3, signed with the backend's
  session and client params (``endpoint_url`` included).

Other anymail providers are reported as not supported (not as failed).

Credentials, API URL and client parameters are read from the backend instance
(``mailers[alias]``), which anymail fills from ``OPTIONS`` and ``ANYMAIL``, so
the check talks to exactly what sending would. Nothing a provider answers is
stored as it is: success bodies are read for a name or two (Postmark's even
lists the server's tokens), and every error text is redacted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.utils.module_loading import import_string

from .conf import from_email_for
from .mailer_info import mailer_options
from .redaction import redact

# Where providers put their reason in a JSON error body, most specific first.
_MESSAGE_KEYS = ("Message", "message", "error_description", "error", "detail", "title")
_REASON_LIMIT = 500


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
class _Request:
    url: str
    headers: dict[str, str]
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class _Verdict:
    """What a provider's 2xx answer says about sending."""

    note: str = ""
    warnings: tuple[str, ...] = ()
    # The key works, but the provider would refuse to send (e.g. no mail.send scope).
    failure: str = ""
    # Not the provider's answer at all (an api_url that points at some other server).
    unrecognised: str = ""


@dataclass(frozen=True)
class _HTTPProbe:
    """A read-only GET against a provider's REST API (through ``requests``)."""

    esp: str
    # The backend attribute that holds the key anymail sends with.
    key_attribute: str
    build: Callable[[Any, str, str], _Request]
    # Reads a 2xx JSON body.
    accept: Callable[[Any], _Verdict]
    # Extra words for a 401/403 from this provider.
    refusal_hint: str = ""
    not_found_hint: str = ""


def _postmark_request(backend: Any, key: str, alias: str) -> _Request:
    return _Request(
        f"{backend.api_url}server",
        {"Accept": "application/json", "X-Postmark-Server-Token": key},
    )


def _postmark_accept(body: Any) -> _Verdict:
    # The body also lists the server's API tokens: read the name, nothing else.
    if not isinstance(body, Mapping) or "Name" not in body:
        return _Verdict(unrecognised="Postmark's server details")
    return _Verdict(f"server {str(body['Name'])!r}")


def _mailgun_request(backend: Any, key: str, alias: str) -> _Request:
    domain = mailgun_sender_domain(backend, alias)
    api_url = str(backend.api_url)
    # Anymail's api_url names the v3 API that sends; domains live in v4 (v3's are legacy).
    if api_url.endswith("/v3/"):
        api_url = api_url[: -len("v3/")] + "v4/"
    return _Request(
        f"{api_url}domains/{quote(domain, safe='')}",
        {"Accept": "application/json"},
        auth=("api", key),
    )


def mailgun_sender_domain(backend: Any, alias: str) -> str:
    """The domain anymail sends from: ``sender_domain``, else the From address's."""
    if backend.sender_domain:
        return str(backend.sender_domain)
    return parseaddr(from_email_for(alias))[1].rpartition("@")[2]


def _mailgun_accept(body: Any) -> _Verdict:
    domain = body.get("domain") if isinstance(body, Mapping) else None
    if not isinstance(domain, Mapping):
        return _Verdict(unrecognised="Mailgun's domain details")
    name, state = domain.get("name", ""), domain.get("state", "")
    warnings: tuple[str, ...] = ()
    if state and state != "active":
        warnings = (
            f"Mailgun reports the domain {name!r} as {state!r}: it sends only once "
            "its DNS records are verified and it is not disabled",
        )
    return _Verdict(f"domain {name!r}" + (f", {state}" if state else ""), warnings)


def _sendgrid_request(backend: Any, key: str, alias: str) -> _Request:
    return _Request(
        f"{backend.api_url}scopes",
        {"Accept": "application/json", "Authorization": f"Bearer {key}"},
    )


def _sendgrid_accept(body: Any) -> _Verdict:
    scopes = body.get("scopes") if isinstance(body, Mapping) else None
    if not isinstance(scopes, list):
        return _Verdict(unrecognised="SendGrid's list of scopes")
    if "mail.send" not in scopes:
        # A restricted key can read its scopes but SendGrid refuses its sends.
        return _Verdict(failure="the API key is valid but lacks the mail.send permission")
    return _Verdict("key may send mail")


def _brevo_request(backend: Any, key: str, alias: str) -> _Request:
    return _Request(f"{backend.api_url}account", {"Accept": "application/json", "api-key": key})


def _brevo_accept(body: Any) -> _Verdict:
    if not isinstance(body, Mapping) or not ({"email", "plan"} & body.keys()):
        return _Verdict(unrecognised="Brevo's account details")
    company = str(body.get("companyName") or "")
    return _Verdict(f"account {company!r}" if company else "")


# Backend class path -> probe; subclasses (custom backends) match too.
_HTTP_PROBES: dict[str, _HTTPProbe] = {
    "anymail.backends.postmark.EmailBackend": _HTTPProbe(
        "Postmark", "server_token", _postmark_request, _postmark_accept
    ),
    "anymail.backends.mailgun.EmailBackend": _HTTPProbe(
        "Mailgun",
        "api_key",
        _mailgun_request,
        _mailgun_accept,
        refusal_hint="the check needs an account API key; a Domain Sending Key may only "
        "send, so check such a mailer by sending a test mail",
        not_found_hint="Mailgun does not know this sender domain: check sender_domain or the "
        "From address, and the API region (EU domains use https://api.eu.mailgun.net/v3/)",
    ),
    "anymail.backends.sendgrid.EmailBackend": _HTTPProbe(
        "SendGrid", "api_key", _sendgrid_request, _sendgrid_accept
    ),
    "anymail.backends.brevo.EmailBackend": _HTTPProbe(
        "Brevo",
        "api_key",
        _brevo_request,
        _brevo_accept,
        refusal_hint="Brevo also refuses keys used from an IP address missing from its "
        "authorised IPs",
    ),
}
_SES_BACKEND = "anymail.backends.amazon_ses.EmailBackend"


def supports_probe(backend_class: type) -> bool:
    """Whether mailops can verify mailers of ``backend_class`` without sending."""
    return any(
        issubclass(backend_class, cls)
        for cls in _probe_classes([*_HTTP_PROBES, _SES_BACKEND]).values()
    )


def probe_provider(alias: str, backend: Any, *, default_timeout: float) -> ProbeResult:
    """Make the read-only API call for ``backend`` (the instance ``mailers[alias]``).

    Waits at most the mailer's ``timeout`` option, else ``default_timeout``
    seconds. Never raises for what the provider or the network does.
    """
    for path, cls in _probe_classes(_HTTP_PROBES).items():
        if isinstance(backend, cls):
            timeout = _requests_timeout(alias, backend, default_timeout)
            return _run_http_probe(_HTTP_PROBES[path], alias, backend, timeout)
    ses = _probe_classes([_SES_BACKEND]).get(_SES_BACKEND)
    if ses is not None and isinstance(backend, ses):
        # Imported here: it needs boto3, which only SES mailers install.
        from .ses_check import probe_ses

        return probe_ses(backend, default_timeout=default_timeout)
    esp = str(getattr(backend, "esp_name", "") or type(backend).__name__)
    return ProbeResult(
        ProbeStatus.UNSUPPORTED,
        f"connection check not supported for {esp}: send a test mail instead "
        f"(sendtestmail ADDRESS --using {alias})",
    )


def _probe_classes(paths: Iterable[str]) -> dict[str, type]:
    classes = {}
    for path in paths:
        try:
            classes[path] = import_string(path)
        except ImportError:
            # Amazon SES needs boto3 (anymail's "amazon-ses" extra).
            continue
    return classes


def _requests_timeout(alias: str, backend: Any, default: float) -> Any:
    """The mailer's own timeout if it sets one; anymail's 30 s default is too patient."""
    anymail = getattr(settings, "ANYMAIL", {}) or {}
    configured = (
        "timeout" in mailer_options(alias)
        or "REQUESTS_TIMEOUT" in anymail
        or hasattr(settings, "ANYMAIL_REQUESTS_TIMEOUT")
    )
    return backend.timeout if configured else default


def _run_http_probe(probe: _HTTPProbe, alias: str, backend: Any, timeout: Any) -> ProbeResult:
    key = str(getattr(backend, probe.key_attribute, "") or "")
    secrets = [key]
    try:
        request = probe.build(backend, key, alias)
    except (AttributeError, TypeError, ValueError) as error:
        return ProbeResult(ProbeStatus.API_ERROR, redact(f"configuration: {error}", secrets))
    call = redact(_describe_get(request.url), secrets)
    api = f"the {probe.esp} API at {host_port(request.url)}"
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
            f"unreachable: {api} did not answer within {seconds_text(timeout)}",
            call,
        )
    except requests.RequestException as error:
        return ProbeResult(
            ProbeStatus.UNREACHABLE,
            redact(f"unreachable: cannot reach {api} ({connection_reason(error)})", secrets),
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
            detail = f"API: the answer is not {verdict.unrecognised} (HTTP {status}): check api_url"
            return ProbeResult(ProbeStatus.API_ERROR, redact(detail, secrets), call, status)
        if verdict.failure:
            return ProbeResult(
                ProbeStatus.API_ERROR,
                redact(f"API: {verdict.failure} (HTTP {status})", secrets),
                call,
                status,
                authenticated=True,
                warnings=verdict.warnings,
            )
        note = f" ({verdict.note})" if verdict.note else ""
        return ProbeResult(
            ProbeStatus.AUTHENTICATED,
            f"authenticated with the {probe.esp} API{note}",
            call,
            status,
            authenticated=True,
            warnings=verdict.warnings,
        )
    reason = _reason(body, response.text)
    if status in (401, 403):
        detail = f"API: {probe.esp} refused the credentials (HTTP {status}): {reason}"
        if probe.refusal_hint:
            detail += f" (hint: {probe.refusal_hint})"
        return ProbeResult(
            ProbeStatus.REFUSED, redact(detail, secrets), call, status, authenticated=False
        )
    if 300 <= status < 400:
        where = host_port(response.headers.get("Location", "")) or "elsewhere"
        detail = f"API: unexpected redirect (HTTP {status}) to {where}: check the api_url option"
    elif status == 404 and probe.not_found_hint:
        detail = f"API: {probe.esp} answered HTTP 404: {reason} (hint: {probe.not_found_hint})"
    elif status == 429:
        detail = f"API: {probe.esp} is rate-limiting this account (HTTP 429): {reason}"
    elif status >= 500:
        detail = f"API: {probe.esp} had a problem (HTTP {status}): {reason}; try again later"
    else:
        detail = f"API: {probe.esp} answered HTTP {status}: {reason}"
    return ProbeResult(ProbeStatus.API_ERROR, redact(detail, secrets), call, status)


def _reason(body: Any, text: str) -> str:
    """The provider's own words from an error body (Postmark, Mailgun, SendGrid, Brevo)."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            # SendGrid: {"errors": [{"message": ..., "field": ...}]}
            reason = "; ".join(
                str(item.get("message", item)) if isinstance(item, Mapping) else str(item)
                for item in errors
            )
        else:
            reason = next((str(body[key]) for key in _MESSAGE_KEYS if body.get(key)), "")
            # Postmark's ErrorCode and Brevo's code say which kind of refusal it was.
            code = body.get("ErrorCode", body.get("code"))
            if reason and code not in (None, "", 0):
                reason += f" [code {code}]"
            reason = reason or json.dumps(body, sort_keys=True)
    else:
        reason = text
    reason = " ".join(reason.split()) or "no reason given"
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…"


def connection_reason(error: BaseException) -> str:
    """Why a connection failed, in a few words (``connection refused``, ...)."""
    text = str(error)
    # requests and botocore wrap the socket error: read the whole chain.
    causes: list[object] = [error, getattr(error, "kwargs", {}).get("error")]
    cause = error.__cause__ or error.__context__
    for _depth in range(5):
        if cause is None:
            break
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    lowered = " ".join(str(item) for item in causes if item is not None).lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "host name not resolved"
    if "certificate" in lowered or "ssl" in lowered:
        return "TLS failed: check the API URL and the certificate"
    return " ".join(text.split())[:_REASON_LIMIT] or type(error).__name__


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
