"""/mail/health/ and /mail/metrics: a bearer token, honest states, cheap queries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from mailops.models import ArrivalStatus, MailStatus
from tests.maillog_fixtures import make_log

pytestmark = pytest.mark.django_db

TOKEN = "health-token-0123456789"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
MAILBOX = {"host": "127.0.0.1", "username": "ops@example.com", "password": "imap-pw-1234"}


def mailops_settings(**extra: Any) -> Any:
    return override_settings(MAILOPS={"DEFAULT_MAILER": "default", "HEALTH_TOKEN": TOKEN, **extra})


def health(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/mail/health/", **AUTH)
    return response.status_code, json.loads(response.content)


def sent(mailer: str = "default", ago: float = 60, **fields: Any) -> Any:
    when = timezone.now() - timedelta(seconds=ago)
    fields.setdefault("sent_at", when)
    return make_log(mailer=mailer, created_at=when, **fields)


def failed(mailer: str = "default", ago: float = 30) -> Any:
    when = timezone.now() - timedelta(seconds=ago)
    return make_log(mailer=mailer, status=MailStatus.FAILED, error="550 no", created_at=when)


def canary(arrival: str, *, ago: float = 60, latency: float = 4.0) -> Any:
    log = sent(ago=ago + latency)
    log.arrival = arrival
    log.verified_at = timezone.now() - timedelta(seconds=ago)
    if arrival in (ArrivalStatus.INBOX, ArrivalStatus.JUNK):
        log.arrived_at = log.sent_at + timedelta(seconds=latency)
        log.arrival_folder = "INBOX" if arrival == ArrivalStatus.INBOX else "Junk"
    log.save()
    return log


@pytest.mark.parametrize("path", ["/mail/health/", "/mail/metrics"])
def test_without_a_configured_token_every_request_is_refused(client: Client, path: str) -> None:
    with override_settings(MAILOPS={"HEALTH_TOKEN": ""}):
        assert client.get(path).status_code == 403
        assert client.get(path, HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.parametrize("path", ["/mail/health/", "/mail/metrics"])
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_a_missing_or_wrong_token_gets_401(client: Client, path: str, header: str | None) -> None:
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    with mailops_settings():
        response = client.get(path, **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="mailops"'
    assert TOKEN not in response.content.decode()


def test_healthy_mailers_answer_200(client: Client) -> None:
    sent("default")
    with mailops_settings():
        status, payload = health(client)
    assert status == 200
    assert payload["ok"] is True
    assert payload["mailers"]["default"]["state"] == "ok"
    assert payload["mailers"]["default"]["last_sent_at"] is not None
    # A mailer that never sent anything and has no mailbox has nothing wrong with it.
    assert payload["mailers"]["outbox"]["state"] == "ok"


def test_one_failure_degrades_and_three_in_a_row_fail(client: Client) -> None:
    sent(ago=100)
    failed(ago=50)
    with mailops_settings():
        status, payload = health(client)
    assert status == 503
    default = payload["mailers"]["default"]
    assert (default["state"], default["consecutive_failures"]) == ("degraded", 1)
    assert default["last_failed_at"] is not None
    failed(ago=40)
    failed(ago=30)
    with mailops_settings():
        status, payload = health(client)
    assert status == 503
    assert payload["mailers"]["default"]["state"] == "failing"
    assert payload["mailers"]["default"]["reasons"] == ["the last 3 messages failed"]
    sent(ago=10)
    with mailops_settings():
        status, payload = health(client)
    assert (status, payload["mailers"]["default"]["consecutive_failures"]) == (200, 0)


def test_a_mailer_with_a_mailbox_needs_a_recent_canary_in_the_inbox(client: Client) -> None:
    settings = mailops_settings(MAILBOXES={"default": MAILBOX}, HEALTH_CANARY_MAX_AGE=3600)
    with settings:
        status, payload = health(client)
    assert status == 503
    assert payload["mailers"]["default"]["reasons"] == ["no canary has run (sendtestmail --verify)"]
    canary(ArrivalStatus.INBOX, ago=4000)
    with settings:
        status, payload = health(client)
    assert payload["mailers"]["default"]["reasons"] == ["no canary for over 3600 s"]
    canary(ArrivalStatus.INBOX, ago=60, latency=7)
    with settings:
        status, payload = health(client)
    assert status == 200
    default = payload["mailers"]["default"]
    assert (default["last_arrival"], default["last_arrival_latency_seconds"]) == ("inbox", 7.0)


def test_canaries_in_junk_degrade_then_fail(client: Client) -> None:
    settings = mailops_settings(MAILBOXES={"default": MAILBOX})
    canary(ArrivalStatus.INBOX, ago=400)
    canary(ArrivalStatus.JUNK, ago=300)
    with settings:
        status, payload = health(client)
    assert (status, payload["mailers"]["default"]["state"]) == (503, "degraded")
    canary(ArrivalStatus.MISSING, ago=200)
    canary(ArrivalStatus.ERROR, ago=100)
    with settings:
        _status, payload = health(client)
    assert payload["mailers"]["default"]["state"] == "failing"
    assert payload["mailers"]["default"]["consecutive_canary_failures"] == 3


def test_a_canary_in_the_inbox_with_only_untrusted_verdicts_does_not_pass(client: Client) -> None:
    log = canary(ArrivalStatus.INBOX, ago=100)
    log.authentication_results = (
        "no trusted verdict (Authentication-Results only from attacker.example; "
        "trusted: mx.example.com)"
    )
    log.save()
    with mailops_settings(MAILBOXES={"default": MAILBOX}):
        status, payload = health(client)
    default = payload["mailers"]["default"]
    assert (status, default["state"], default["consecutive_canary_failures"]) == (
        503,
        "degraded",
        1,
    )
    assert "the last canary did not reach the inbox (no trusted verdict)" in default["reasons"]


def test_a_slow_canary_degrades(client: Client) -> None:
    canary(ArrivalStatus.INBOX, ago=10, latency=400)
    with mailops_settings(MAILBOXES={"default": MAILBOX}, HEALTH_MAX_LATENCY=300):
        status, payload = health(client)
    assert status == 503
    assert payload["mailers"]["default"]["reasons"] == ["the last canary took 400 s (over 300)"]


def test_health_queries_do_not_grow_with_the_log(
    client: Client, django_assert_max_num_queries: Any
) -> None:
    for _ in range(20):
        sent()
        failed()
    # Per mailer 4, plus the queue, the window's counts, the 24-hour rates of
    # every mailer and the alert states (mailops.alerts): one query each.
    with mailops_settings(), django_assert_max_num_queries(2 * 4 + 4):
        client.get("/mail/health/", **AUTH)


def test_metrics_in_prometheus_text(client: Client) -> None:
    sent()
    sent()
    failed()
    make_log(status=MailStatus.QUEUED)
    canary(ArrivalStatus.INBOX, ago=30, latency=5)
    # Outside the 24-hour window: not among the 3 sent below.
    sent(ago=3 * 86400)
    with mailops_settings(MAILBOXES={"default": MAILBOX}):
        response = client.get("/mail/metrics", **AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert 'mailops_messages{mailer="default",status="sent"} 3.0' in text
    assert 'mailops_messages{mailer="default",status="failed"} 1.0' in text
    assert "mailops_queue_depth 1.0" in text
    assert 'mailops_arrival_latency_seconds{mailer="default"} 5.0' in text
    assert 'mailops_canary_age_seconds{mailer="default"}' in text
    assert 'mailops_mailer_state{mailer="default",mailops_mailer_state="degraded"} 1.0' in text
