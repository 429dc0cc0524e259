"""How each mail provider's API looks on the wire, for ``tests/provider_api.py``.

One :class:`ProviderShape` per provider: how it reads the API key, where the
recipients are, and what it answers on success, for a rejected recipient,
for a bad key and during an outage, following the providers' documented
JSON shapes. Each also answers the read-only call the connection check makes
(``probe_path``, :meth:`ProviderShape.probe_success`): Postmark's
``GET /server``, Mailgun's ``GET /v4/domains/<name>``, SendGrid's
``GET /v3/scopes``, Brevo's ``GET /v3/account`` and SES v2's
``GET /v2/email/account`` (GetAccount).
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from tests.provider_api import ProviderAPI

__all__ = [
    "PROVIDERS",
    "SES",
    "Brevo",
    "Mailgun",
    "Postmark",
    "ProviderShape",
    "RecordedRequest",
    "Reply",
    "SendGrid",
]


@dataclass
class RecordedRequest:
    """One HTTP request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    reply: Reply | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        """Fields of a urlencoded or multipart/form-data body."""
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            raw = f"Content-Type: {content_type}\r\n\r\n".encode() + self.body
            message = email.message_from_bytes(raw, policy=email.policy.HTTP)
            fields: dict[str, list[str]] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                fields.setdefault(str(name), []).append(payload.decode("utf-8", "replace"))
            return fields
        return parse_qs(self.text, keep_blank_values=True)


@dataclass(frozen=True)
class Reply:
    """What the server answers: status, JSON (or text) body, extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class ProviderShape:
    """How one provider authenticates, names recipients and answers."""

    #: the ``anymail+<esp>://`` scheme and the anymail backend
    esp: ClassVar[str]
    backend: ClassVar[str]
    #: the anymail option that holds the secret
    key_option: ClassVar[str]
    #: the send endpoint's path (a regex)
    send_path: ClassVar[str]
    #: the read-only endpoint the connection check GETs (a regex)
    probe_path: ClassVar[str]

    def presented_key(self, request: RecordedRequest) -> str | None:
        raise NotImplementedError

    def recipients(self, request: RecordedRequest) -> list[str]:
        raise NotImplementedError

    def success(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def rejected(self, addresses: dict[str, str]) -> Reply:
        raise NotImplementedError

    def unauthorized(self, presented: str | None, *, echo: bool) -> Reply:
        raise NotImplementedError

    def server_error(self) -> Reply:
        raise NotImplementedError

    def probe_success(self, request: RecordedRequest) -> Reply:
        """The answer to the connection check's GET with the right key."""
        raise NotImplementedError

    def options(self, api: ProviderAPI, key: str) -> dict[str, Any]:
        """Anymail ``OPTIONS`` that reach ``api`` and present ``key``."""
        return {self.key_option: key, "api_url": api.url}

    def expected(self, key: str) -> str:
        """What a request made with ``key`` presents to the server."""
        return key


class Postmark(ProviderShape):
    """POST /email, ``X-Postmark-Server-Token``; errors carry ErrorCode/Message."""

    esp = "postmark"
    backend = "anymail.backends.postmark.EmailBackend"
    key_option = "server_token"
    send_path = r"^/email$"
    probe_path = r"^/server$"

    def presented_key(self, request: RecordedRequest) -> str | None:
        return request.headers.get("x-postmark-server-token")

    def recipients(self, request: RecordedRequest) -> list[str]:
        return [a.strip() for a in str(request.json().get("To", "")).split(",") if a.strip()]

    def success(self, request: RecordedRequest) -> Reply:
        return Reply(
            200,
            {
                "To": request.json()["To"],
                "SubmittedAt": "2026-01-15T10:00:00.0000000-05:00",
                "MessageID": str(uuid.uuid4()),
                "ErrorCode": 0,
                "Message": "OK",
            },
        )

    def rejected(self, addresses: dict[str, str]) -> Reply:
        address, kind = next(iter(addresses.items()))
        if kind == "invalid":
            return Reply(422, {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{address}'."})
        return Reply(
            422,
            {
                "ErrorCode": 406,
                "Message": "You tried to send to recipient(s) that have been marked as inactive.\n"
                f"Found inactive addresses: {address}.\n"
                "Inactive recipients are ones that have generated a hard bounce, a spam "
                "complaint, or a manual suppression. ",
            },
        )

    def unauthorized(self, presented: str | None, *, echo: bool) -> Reply:
        shown = f" ('{presented}')" if echo else ""
        return Reply(
            401,
            {
                "ErrorCode": 10,
                "Message": f"The Server Token you provided{shown} in the "
                "X-Postmark-Server-Token request header was invalid. Please verify that "
                "you are using a valid token.",
            },
        )

    def server_error(self) -> Reply:
        return Reply(500, {"ErrorCode": 500, "Message": "Internal server error"})

    def probe_success(self, request: RecordedRequest) -> Reply:
        # "Get the server": the answer lists the server's own API tokens.
        return Reply(
            200,
            {
                "ID": 1,
                "Name": "Staging Testing",
                "ApiTokens": [request.headers.get("x-postmark-server-token", "")],
                "Color": "red",
                "SmtpApiActivated": True,
                "DeliveryType": "Live",
            },
        )


class Mailgun(ProviderShape):
    """POST /v3/<domain>/messages with basic auth ``api:<key>``; form fields in."""

    esp = "mailgun"
    backend = "anymail.backends.mailgun.EmailBackend"
    key_option = "api_key"
    send_path = r"^/v3/[^/]+/messages$"
    probe_path = r"^/v4/domains/[^/]+$"

    def presented_key(self, request: RecordedRequest) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return secret if user == "api" else None

    def recipients(self, request: RecordedRequest) -> list[str]:
        return request.form().get("to", [])

    def success(self, request: RecordedRequest) -> Reply:
        domain = request.path.split("/")[2]
        return Reply(
            200,
            {
                "id": f"<20260115100000.{uuid.uuid4().hex[:16]}@{domain}>",
                "message": "Queued. Thank you.",
            },
        )

    def rejected(self, addresses: dict[str, str]) -> Reply:
        address = next(iter(addresses))
        return Reply(400, {"message": f"to parameter is not a valid address: {address}"})

    def unauthorized(self, presented: str | None, *, echo: bool) -> Reply:
        if echo:
            return Reply(401, {"message": f"Invalid private key: {presented}"})
        return Reply(401, "Forbidden")

    def server_error(self) -> Reply:
        return Reply(503, {"message": "Service Unavailable: try again later"})

    def probe_success(self, request: RecordedRequest) -> Reply:
        name = request.path.rsplit("/", 1)[1]
        return Reply(
            200,
            {
                "domain": {
                    "created_at": "Thu, 13 Oct 2011 18:02:00 GMT",
                    "id": "123456789012345678901234",
                    "name": name,
                    "require_tls": True,
                    "smtp_login": f"postmaster@{name}",
                    "spam_action": "disabled",
                    "state": "active",
                    "type": "custom",
                },
                "receiving_dns_records": [],
                "sending_dns_records": [],
            },
        )

    def domain_not_found(self) -> Reply:
        return Reply(404, {"message": "Domain not found"})

    def options(self, api: ProviderAPI, key: str) -> dict[str, Any]:
        return {self.key_option: key, "api_url": api.url + "v3/"}


class SendGrid(ProviderShape):
    """POST /v3/mail/send with a bearer key; 202 and an empty body on success."""

    esp = "sendgrid"
    backend = "anymail.backends.sendgrid.EmailBackend"
    key_option = "api_key"
    send_path = r"^/v3/mail/send$"
    probe_path = r"^/v3/scopes$"

    def presented_key(self, request: RecordedRequest) -> str | None:
        header = request.headers.get("authorization", "")
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else None

    def recipients(self, request: RecordedRequest) -> list[str]:
        return [
            to["email"]
            for personalization in request.json().get("personalizations", [])
            for to in personalization.get("to", [])
        ]

    def success(self, request: RecordedRequest) -> Reply:
        return Reply(202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})

    def rejected(self, addresses: dict[str, str]) -> Reply:
        return Reply(
            400,
            {
                "errors": [
                    {
                        "message": "Does not contain a valid address.",
                        "field": "personalizations.0.to.0.email",
                        "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/"
                        "errors.html#message.personalizations.to",
                    }
                ]
            },
        )

    def unauthorized(self, presented: str | None, *, echo: bool) -> Reply:
        message = "The provided authorization grant is invalid, expired, or revoked"
        if echo:
            message += f": Bearer {presented}"
        return Reply(401, {"errors": [{"message": message, "field": None, "help": None}]})

    def server_error(self) -> Reply:
        return Reply(500, {"errors": [{"message": "Internal error", "field": None, "help": None}]})

    def probe_success(self, request: RecordedRequest) -> Reply:
        return Reply(200, {"scopes": ["mail.send", "alerts.read", "stats.read"]})

    def restricted_scopes(self) -> Reply:
        """What a key restricted to reading stats sees: no mail.send."""
        return Reply(200, {"scopes": ["stats.read"]})

    def options(self, api: ProviderAPI, key: str) -> dict[str, Any]:
        return {self.key_option: key, "api_url": api.url + "v3/"}


class Brevo(ProviderShape):
    """POST /v3/smtp/email with an ``api-key`` header; 201 with messageId."""

    esp = "brevo"
    backend = "anymail.backends.brevo.EmailBackend"
    key_option = "api_key"
    send_path = r"^/v3/smtp/email$"
    probe_path = r"^/v3/account$"

    def presented_key(self, request: RecordedRequest) -> str | None:
        return request.headers.get("api-key")

    def recipients(self, request: RecordedRequest) -> list[str]:
        return [to["email"] for to in request.json().get("to", [])]

    def success(self, request: RecordedRequest) -> Reply:
        return Reply(
            201, {"messageId": f"<202601151000.{uuid.uuid4().int % 10**11}@smtp-relay.mailin.fr>"}
        )

    def rejected(self, addresses: dict[str, str]) -> Reply:
        address = next(iter(addresses))
        return Reply(
            400, {"code": "invalid_parameter", "message": f"email is not valid in to: {address}"}
        )

    def unauthorized(self, presented: str | None, *, echo: bool) -> Reply:
        message = f"Key not found: {presented}" if echo else "Key not found"
        return Reply(401, {"code": "unauthorized", "message": message})

    def server_error(self) -> Reply:
        return Reply(500, {"code": "internal_error", "message": "Internal server error"})

    def probe_success(self, request: RecordedRequest) -> Reply:
        return Reply(
            200,
            {
                "email": "ops@example.com",
                "firstName": "Ops",
                "lastName": "Team",
                "companyName": "Example Ltd",
                "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
                "relay": {"enabled": True, "data": {"relay": "smtp-relay.brevo.com"}},
            },
        )

    def options(self, api: ProviderAPI, key: str) -> dict[str, Any]:
        return {self.key_option: key, "api_url": api.url + "v3/"}


class SES(ProviderShape):
    """Amazon SES v2 ``SendEmail``: POST /v2/email/outbound-emails, SigV4-signed JSON.

    Only the access key id in the ``Credential`` of the signature is checked;
    recomputing SigV4 here would test botocore, not mailops.
    """

    esp = "amazon_ses"
    backend = "anymail.backends.amazon_ses.EmailBackend"
    key_option = "aws_secret_access_key"
    send_path = r"^/v2/email/outbound-emails$"
    probe_path = r"^/v2/email/account$"
    region = "eu-west-1"

    def expected(self, key: str) -> str:
        # Each secret gets its own access key id, so a wrong secret is refused.
        return "AKIA" + hashlib.sha256(key.encode()).hexdigest()[:16].upper()

    def presented_key(self, request: RecordedRequest) -> str | None:
        match = re.search(r"Credential=([^/]+)/", request.headers.get("authorization", ""))
        return match[1] if match else None

    def recipients(self, request: RecordedRequest) -> list[str]:
        return list(request.json().get("Destination", {}).get("ToAddresses", []))

    def success(self, request: RecordedRequest) -> Reply:
        return Reply(200, {"MessageId": f"0102019{uuid.uuid4().hex}-000000"})

    @staticmethod
    def _error(status: int, code: str, message: str) -> Reply:
        # The REST-JSON protocol names the error type in a header and the body.
        return Reply(status, {"__type": code, "message": message}, {"x-amzn-ErrorType": f"{code}:"})

    def rejected(self, addresses: dict[str, str]) -> Reply:
        address = next(iter(addresses))
        return self._error(
            400,
            "MessageRejected",
            "Email address is not verified. The following identities failed the check "
            f"in region EU-WEST-1: {address}",
        )

    def unauthorized(self, presented: str | None, *, echo: bool) -> Reply:
        message = "The security token included in the request is invalid."
        if echo:
            message += f" (access key {presented})"
        return self._error(403, "UnrecognizedClientException", message)

    def server_error(self) -> Reply:
        return self._error(500, "InternalFailure", "The request processing has failed.")

    def probe_success(self, request: RecordedRequest) -> Reply:
        return Reply(
            200,
            {
                "DedicatedIpAutoWarmupEnabled": False,
                "EnforcementStatus": "HEALTHY",
                "ProductionAccessEnabled": True,
                "SendQuota": {
                    "Max24HourSend": 50000.0,
                    "MaxSendRate": 14.0,
                    "SentLast24Hours": 12.0,
                },
                "SendingEnabled": True,
            },
        )

    def sandbox_account(self) -> Reply:
        return Reply(
            200,
            {
                "ProductionAccessEnabled": False,
                "SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0},
                "SendingEnabled": True,
            },
        )

    def access_denied(self) -> Reply:
        """An identity allowed ses:SendEmail only: the key is real, GetAccount is not allowed."""
        return self._error(
            403,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/mailer is not authorized to perform: "
            "ses:GetAccount",
        )

    def options(self, api: ProviderAPI, key: str) -> dict[str, Any]:
        # ``key`` is the secret access key; boto3 signs with it and never sends it.
        return {
            "session_params": {
                "aws_access_key_id": self.expected(key),
                "aws_secret_access_key": key,
                "region_name": self.region,
            },
            "client_params": {
                "endpoint_url": api.url.rstrip("/"),
                # One attempt: botocore's retries with backoff would only slow the tests.
                "config": {"retries": {"total_max_attempts": 1}},
            },
        }


PROVIDERS: dict[str, type[ProviderShape]] = {
    shape.esp: shape for shape in (Postmark, Mailgun, SendGrid, Brevo, SES)
}
