"""The Amazon SES probe of :mod:`mailops.mailers.probes`: SES v2 ``GetAccount``.

It builds the boto3 client the way anymail's backend does (its
``session_params`` and ``client_params``, ``endpoint_url`` included), so the
check signs with the mailer's own credentials and reaches the same endpoint.
A separate module because it needs boto3, which only SES mailers install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.utils.translation import gettext as _

from mailops.mailers.probes.base import (
    ProbeResult,
    ProbeStatus,
    connection_reason,
    host_port,
    seconds_text,
)
from mailops.redaction import redact

# AWS error codes that mean "these credentials are not valid" (as opposed to
# "valid, but not allowed to call this": AccessDeniedException).
_AWS_BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
    }
)


def probe_ses(backend: Any, *, default_timeout: float) -> ProbeResult:
    """SES v2 ``GetAccount`` with the backend's boto3 session and client params."""
    session_params = dict(backend.session_params)
    client_params = dict(backend.client_params)
    secrets = _values_named(session_params, client_params)
    config = client_params.get("config") or Config()
    # Keep what the mailer configured; otherwise botocore would wait 60 s and
    # retry a connection error four times, multiplying the wait of a check.
    # (botocore's own record of the options passed explicitly; Config has no public one)
    chosen = getattr(config, "_user_provided_options", {})
    limits: dict[str, Any] = {
        name: default_timeout for name in ("connect_timeout", "read_timeout") if name not in chosen
    }
    if "retries" not in chosen:
        limits["retries"] = {"total_max_attempts": 1}
    if limits:
        client_params["config"] = config.merge(Config(**limits))
    try:
        client = boto3.session.Session(**session_params).client("sesv2", **client_params)
    except BotoCoreError as error:
        return ProbeResult(
            ProbeStatus.API_ERROR, redact(_("configuration: %(error)s") % {"error": error}, secrets)
        )
    region = client.meta.region_name
    call = f"SES v2 GetAccount ({region})"
    api = _("the %(provider)s API at %(host)s") % {
        "provider": "Amazon SES",
        "host": host_port(client.meta.endpoint_url),
    }
    try:
        account = client.get_account()
    except ClientError as error:
        return _ses_refusal(error, call, secrets)
    except (ConnectTimeoutError, ReadTimeoutError):
        wait = seconds_text(getattr(client.meta.config, "read_timeout", default_timeout))
        return ProbeResult(
            ProbeStatus.UNREACHABLE,
            _("unreachable: %(api)s did not answer within %(seconds)s")
            % {"api": api, "seconds": wait},
            call,
        )
    except (BotoConnectionError, HTTPClientError) as error:
        return ProbeResult(
            ProbeStatus.UNREACHABLE,
            redact(
                _("unreachable: cannot reach %(api)s (%(reason)s)")
                % {"api": api, "reason": connection_reason(error)},
                secrets,
            ),
            call,
        )
    except BotoCoreError as error:
        # No credentials anywhere, no region, ...: nothing was verified.
        return ProbeResult(
            ProbeStatus.API_ERROR,
            redact(_("configuration: %(error)s") % {"error": error}, secrets),
            call,
        )
    finally:
        client.close()
    return _ses_account(account, region, call)


def _ses_refusal(error: Any, call: str, secrets: list[str]) -> ProbeResult:
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "")), str(details.get("Message", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    reason = f"{message} [code {code}]" if message else code or _("no reason given")
    http = f"HTTP {status}" if status else _("no HTTP status")
    if code == "AccessDeniedException":
        # AWS knew the key (it checked the policy), so the credentials are real;
        # an identity limited to ses:SendEmail is a sensible setup.
        return ProbeResult(
            ProbeStatus.AUTHENTICATED,
            _("authenticated with the %(provider)s API (%(note)s)")
            % {"provider": "Amazon SES", "note": _("credentials accepted")},
            call,
            status,
            authenticated=True,
            warnings=(
                _(
                    "the IAM identity may not call ses:GetAccount, so the sending quota and "
                    "sandbox status were not read"
                ),
            ),
        )
    if code in _AWS_BAD_CREDENTIALS or status == 401:
        return ProbeResult(
            ProbeStatus.REFUSED,
            redact(
                _("API: Amazon SES refused the credentials (%(http)s): %(reason)s")
                % {"http": http, "reason": reason},
                secrets,
            ),
            call,
            status,
            authenticated=False,
        )
    return ProbeResult(
        ProbeStatus.API_ERROR,
        redact(
            _("API: Amazon SES answered %(http)s: %(reason)s") % {"http": http, "reason": reason},
            secrets,
        ),
        call,
        status,
    )


def _ses_account(account: Mapping[str, Any], region: str, call: str) -> ProbeResult:
    status = account.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if account.get("SendingEnabled") is False:
        return ProbeResult(
            ProbeStatus.API_ERROR,
            _("API: Amazon SES has sending paused for this account in %(region)s")
            % {"region": region},
            call,
            status,
            authenticated=True,
        )
    warnings: tuple[str, ...] = ()
    access = _("production access")
    if account.get("ProductionAccessEnabled") is False:
        access = _("sandbox")
        warnings = (
            _(
                "the account is in the SES sandbox in %(region)s: it sends only to verified "
                "addresses and domains"
            )
            % {"region": region},
        )
    quota = account.get("SendQuota") or {}
    note = f"{region}, {access}"
    if "Max24HourSend" in quota:
        note += ", " + _("%(sent)g of %(quota)g sent in 24 h") % {
            "sent": quota.get("SentLast24Hours", 0),
            "quota": quota["Max24HourSend"],
        }
    return ProbeResult(
        ProbeStatus.AUTHENTICATED,
        _("authenticated with the %(provider)s API (%(note)s)")
        % {"provider": "Amazon SES", "note": note},
        call,
        status,
        authenticated=True,
        warnings=warnings,
    )


def _values_named(*params: Mapping[str, Any]) -> list[str]:
    """The secret-looking values in boto3 params (secret key, session token)."""
    return [
        str(value)
        for mapping in params
        for name, value in mapping.items()
        if isinstance(value, str) and ("secret" in name or "token" in name)
    ]
