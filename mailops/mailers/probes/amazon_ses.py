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
        return ProbeResult(ProbeStatus.API_ERROR, redact(f"configuration: {error}", secrets))
    region = client.meta.region_name
    call = f"SES v2 GetAccount ({region})"
    api = f"the Amazon SES API at {host_port(client.meta.endpoint_url)}"
    try:
        account = client.get_account()
    except ClientError as error:
        return _ses_refusal(error, call, secrets)
    except (ConnectTimeoutError, ReadTimeoutError):
        wait = seconds_text(getattr(client.meta.config, "read_timeout", default_timeout))
        return ProbeResult(
            ProbeStatus.UNREACHABLE, f"unreachable: {api} did not answer within {wait}", call
        )
    except (BotoConnectionError, HTTPClientError) as error:
        return ProbeResult(
            ProbeStatus.UNREACHABLE,
            redact(f"unreachable: cannot reach {api} ({connection_reason(error)})", secrets),
            call,
        )
    except BotoCoreError as error:
        # No credentials anywhere, no region, ...: nothing was verified.
        return ProbeResult(ProbeStatus.API_ERROR, redact(f"configuration: {error}", secrets), call)
    finally:
        client.close()
    return _ses_account(account, region, call)


def _ses_refusal(error: Any, call: str, secrets: list[str]) -> ProbeResult:
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "")), str(details.get("Message", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    reason = f"{message} [code {code}]" if message else code or "no reason given"
    http = f"HTTP {status}" if status else "no HTTP status"
    if code == "AccessDeniedException":
        # AWS knew the key (it checked the policy), so the credentials are real;
        # an identity limited to ses:SendEmail is a sensible setup.
        return ProbeResult(
            ProbeStatus.AUTHENTICATED,
            "authenticated with the Amazon SES API (credentials accepted)",
            call,
            status,
            authenticated=True,
            warnings=(
                "the IAM identity may not call ses:GetAccount, so the sending quota and "
                "sandbox status were not read",
            ),
        )
    if code in _AWS_BAD_CREDENTIALS or status == 401:
        return ProbeResult(
            ProbeStatus.REFUSED,
            redact(f"API: Amazon SES refused the credentials ({http}): {reason}", secrets),
            call,
            status,
            authenticated=False,
        )
    return ProbeResult(
        ProbeStatus.API_ERROR,
        redact(f"API: Amazon SES answered {http}: {reason}", secrets),
        call,
        status,
    )


def _ses_account(account: Mapping[str, Any], region: str, call: str) -> ProbeResult:
    status = account.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if account.get("SendingEnabled") is False:
        return ProbeResult(
            ProbeStatus.API_ERROR,
            f"API: Amazon SES has sending paused for this account in {region}",
            call,
            status,
            authenticated=True,
        )
    warnings: tuple[str, ...] = ()
    access = "production access"
    if account.get("ProductionAccessEnabled") is False:
        access = "sandbox"
        warnings = (
            f"the account is in the SES sandbox in {region}: it sends only to verified "
            "addresses and domains",
        )
    quota = account.get("SendQuota") or {}
    used = ""
    if "Max24HourSend" in quota:
        used = f", {quota.get('SentLast24Hours', 0):g} of {quota['Max24HourSend']:g} sent in 24 h"
    return ProbeResult(
        ProbeStatus.AUTHENTICATED,
        f"authenticated with the Amazon SES API ({region}, {access}{used})",
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
