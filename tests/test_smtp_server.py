"""Tests of the loopback SMTP server fixture itself, with plain ``smtplib``."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

import pytest
import trustme

from tests.smtp_server import DEFAULT_PASSWORD as PASSWORD
from tests.smtp_server import LoopbackSMTPServer


def _message(to: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "sender@example.com"
    msg["To"] = ", ".join(to)
    msg["Subject"] = "Loopback test"
    msg["Message-ID"] = "<loopback-1@example.com>"
    msg.set_content("Hello from the loopback test.\n")
    return msg


def _starttls_client(server: LoopbackSMTPServer) -> smtplib.SMTP:
    client = smtplib.SMTP(server.host, server.port, timeout=5)
    # A default context verifies against SSL_CERT_FILE, i.e. the test CA.
    client.starttls(context=ssl.create_default_context())
    return client


def test_starttls_auth_and_delivery(smtp_server: LoopbackSMTPServer) -> None:
    with _starttls_client(smtp_server) as client:
        client.login("mailops", PASSWORD)
        client.send_message(_message(["alice@example.com"]))

    [received] = smtp_server.wait_for_messages(1)
    assert received.mail_from == "sender@example.com"
    assert received.rcpt_tos == ["alice@example.com"]
    assert received.message_id == "<loopback-1@example.com>"
    assert received.message["Subject"] == "Loopback test"
    assert b"Hello from the loopback test." in received.data
    assert smtp_server.auth_attempts == 1
    assert smtp_server.connections == 1
    assert smtp_server.options()["use_tls"] is True
    assert smtp_server.url().startswith("smtp+tls://mailops:correct%20horse%20battery%20staple@")


def test_starttls_required_before_auth(smtp_server: LoopbackSMTPServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, _ = client.mail("sender@example.com")
        assert code == 530


def test_wrong_password_is_535(smtp_server: LoopbackSMTPServer) -> None:
    with (
        _starttls_client(smtp_server) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as exc,
    ):
        client.login("mailops", "wrong")
    assert exc.value.smtp_code == 535
    assert b"wrong" not in exc.value.smtp_error
    assert smtp_server.messages == []


def test_echo_password_in_refusal(smtp_server: LoopbackSMTPServer) -> None:
    smtp_server.echo_credentials_on_auth_failure = True
    with (
        _starttls_client(smtp_server) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as exc,
    ):
        client.login("mailops", "s3cret-leak")
    assert exc.value.smtp_code == 535
    assert b"s3cret-leak" in exc.value.smtp_error


def test_implicit_tls(smtps_server: LoopbackSMTPServer) -> None:
    context = ssl.create_default_context()
    with smtplib.SMTP_SSL(
        smtps_server.host, smtps_server.port, context=context, timeout=5
    ) as client:
        client.login("mailops", PASSWORD)
        client.send_message(_message(["bob@example.com"]))
    assert smtps_server.wait_for_messages(1)[0].rcpt_tos == ["bob@example.com"]
    assert smtps_server.options()["use_ssl"] is True
    assert smtps_server.url().startswith("smtps://")


def test_unrelated_ca_rejects_certificate(smtps_server: LoopbackSMTPServer) -> None:
    # A client context that trusts only some other CA (not SSL_CERT_FILE).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=trustme.CA().cert_pem.bytes().decode())
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(smtps_server.host, smtps_server.port, context=context, timeout=5)


def test_per_recipient_rejection_and_data_reply(smtp_server: LoopbackSMTPServer) -> None:
    smtp_server.rejected_recipients["Nobody@example.com".lower()] = (
        "550 5.1.1 <nobody@example.com> No such user"
    )
    with _starttls_client(smtp_server) as client:
        client.login("mailops", PASSWORD)
        refused = client.send_message(_message(["alice@example.com", "NOBODY@example.com"]))
        assert refused == {"NOBODY@example.com": (550, b"5.1.1 <nobody@example.com> No such user")}

        smtp_server.data_replies["carol@example.com"] = "451 4.3.0 Try again later"
        with pytest.raises(smtplib.SMTPDataError) as exc:
            client.send_message(_message(["carol@example.com"]))
        assert exc.value.smtp_code == 451

    [received] = smtp_server.wait_for_messages(1)
    assert received.rcpt_tos == ["alice@example.com"]


def test_drop_connection(smtp_server: LoopbackSMTPServer) -> None:
    smtp_server.drop_connection_for.add("dropme@example.com")
    with _starttls_client(smtp_server) as client:
        client.login("mailops", PASSWORD)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.send_message(_message(["dropme@example.com"]))
    assert smtp_server.messages == []


def test_plain_mode_without_auth(smtp_server_factory: Callable[..., LoopbackSMTPServer]) -> None:
    server = smtp_server_factory(tls_mode="none", username=None)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.send_message(_message(["dave@example.com"]))
    assert server.wait_for_messages(1)[0].rcpt_tos == ["dave@example.com"]
    assert server.url() == f"smtp://127.0.0.1:{server.port}?timeout=5"
    with pytest.raises(AssertionError, match="expected 2 message"):
        server.wait_for_messages(2, timeout=0.05)


def test_plain_mode_with_auth(smtp_server_factory: Callable[..., LoopbackSMTPServer]) -> None:
    server = smtp_server_factory(tls_mode="none")
    assert server.options()["use_tls"] is server.options()["use_ssl"] is False
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.login("mailops", PASSWORD)
        client.send_message(_message(["erin@example.com"]))
    assert server.wait_for_messages(1)[0].rcpt_tos == ["erin@example.com"]


def test_closed_port_refuses(closed_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", closed_port, timeout=5)
