"""Bounce and complaint rates: /mail/metrics, /mail/health/, the Mailers page, the alert webhook."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailops import alerts
from mailops.arrival.health import check_alerts
from mailops.models import AlertState, ArrivalStatus, MailStatus
from tests.alert_receiver import AlertReceiver, alert_receiver  # noqa: F401 - fixture
from tests.maillog_fixtures import make_log

pytestmark = pytest.mark.django_db

TOKEN = "health-token-0123456789"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture
def monitored(settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "HEALTH_TOKEN": TOKEN}


def messages(
    mailer: str = "default",
    *,
    sent: int = 0,
    bounced: int = 0,
    complained: int = 0,
    ago: float = 600,
) -> None:
    when = timezone.now() - timedelta(seconds=ago)
    for status, count in (
        (MailStatus.SENT, sent),
        (MailStatus.BOUNCED, bounced),
        (MailStatus.COMPLAINED, complained),
    ):
        for _ in range(count):
            make_log(mailer=mailer, status=status, created_at=when, sent_at=when)


def health(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/mail/health/", **AUTH)
    return response.status_code, json.loads(response.content)


def test_rates_count_the_last_24_hours_per_mailer() -> None:
    messages(sent=97, bounced=2, complained=1)
    messages(sent=10, bounced=5, ago=2 * 86400)

    rates = alerts.mailer_rates()["default"]

    assert (rates.accepted, rates.bounces, rates.complaints) == (100, 2, 1)
    assert (rates.bounce_rate, rates.complaint_rate) == (0.02, 0.01)


def test_metrics_show_bounces_and_complaints_per_mailer(client: Client, monitored: None) -> None:
    messages(sent=8, bounced=2)

    text = client.get("/mail/metrics", **AUTH).content.decode()

    assert 'mailops_bounces_24h{mailer="default"} 2.0' in text
    assert 'mailops_complaints_24h{mailer="default"} 0.0' in text
    assert 'mailops_bounce_rate_24h{mailer="default"} 0.2' in text
    assert 'mailops_complaint_rate_24h{mailer="default"} 0.0' in text
    assert 'mailops_mailer_state{mailer="default",mailops_mailer_state="warning"} 1.0' in text


def test_a_bounce_rate_over_the_threshold_is_a_warning_not_an_outage(
    client: Client, monitored: None
) -> None:
    messages(sent=97, bounced=3)

    status, body = health(client)

    assert status == 200
    assert (body["ok"], body["warning"]) == (True, True)
    default = body["mailers"]["default"]
    assert default["state"] == "warning"
    assert (default["bounces_24h"], default["accepted_24h"], default["bounce_rate_24h"]) == (
        3,
        100,
        0.03,
    )
    assert default["warnings"] == ["3 of 100 messages bounced in the last 24 h (3.00%, over 2.00%)"]


def test_at_the_threshold_and_with_a_higher_one_there_is_no_warning(
    client: Client, monitored: None, settings: Any
) -> None:
    messages(sent=98, bounced=2)
    assert health(client)[1]["mailers"]["default"]["state"] == "ok"
    messages(sent=0, complained=1)
    assert health(client)[1]["mailers"]["default"]["state"] == "warning"
    settings.MAILOPS = {**settings.MAILOPS, "COMPLAINT_RATE_WARNING": 0.05}
    assert health(client)[1]["mailers"]["default"]["state"] == "ok"


def test_the_mailers_page_shows_the_rates_and_the_warning(admin_client: Client) -> None:
    messages(sent=90, bounced=10)

    page = admin_client.get(reverse("admin:mailops_mailers")).content.decode()

    assert "Last 24 h: bounces 10, complaints 0" in page
    assert "10 of 100 messages bounced in the last 24 h (10.00%, over 2.00%)" in page


def test_the_webhook_hears_of_each_crossing_once(
    client: Client,
    monitored: None,
    settings: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "ALERT_WEBHOOK": alert_receiver.url}
    messages(sent=90, bounced=10)

    for _ in range(3):
        health(client)

    (raised,) = alert_receiver.wait_for(1)
    assert raised["mailer"] == "default"
    assert (raised["alert"], raised["state"]) == ("bounce_rate", "raised")
    assert raised["message"].startswith("10 of 100 messages bounced")
    assert alert_receiver.headers[0]["content-type"] == "application/json"
    assert AlertState.objects.get(key="default:bounce_rate").raised

    messages(sent=900)
    health(client)
    health(client)

    cleared = alert_receiver.wait_for(2)[1]
    assert (cleared["alert"], cleared["state"]) == ("bounce_rate", "cleared")
    assert len(alert_receiver.received) == 2


def test_a_failed_canary_raises_an_alert(
    settings: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "ALERT_WEBHOOK": alert_receiver.url}
    log = make_log(sent_at=timezone.now())
    log.arrival = ArrivalStatus.MISSING
    log.verified_at = timezone.now()
    log.save()

    check_alerts("default")

    (alert,) = alert_receiver.wait_for(1)
    assert (alert["alert"], alert["state"]) == ("canary", "raised")
    assert "did not reach the inbox (missing)" in alert["message"]


def test_a_webhook_that_hangs_does_not_hold_up_the_check(
    settings: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    settings.MAILOPS = {
        **settings.MAILOPS,
        "ALERT_WEBHOOK": alert_receiver.url,
        "ALERT_TIMEOUT": 30,
    }
    alert_receiver.hang.set()

    posted = alerts.update_alerts({"default": {alerts.BOUNCE_RATE: "50 of 100 bounced"}})

    # The check returned while the receiver still holds the request open.
    assert len(posted) == 1
    alert_receiver.wait_for(1)
    assert not alert_receiver.release.is_set()
    alert_receiver.release.set()


def test_an_unreachable_webhook_is_logged_without_its_url(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = "http://127.0.0.1:9/hook?token=alert-secret-77"
    payload = alerts.alert_payload("default", alerts.CANARY, "x")
    with caplog.at_level("WARNING", logger="mailops.alerts"):
        alerts._post(url, payload, 5)
    assert "the alert webhook could not be reached" in caplog.text
    assert "alert-secret-77" not in caplog.text
    assert "127.0.0.1:9" not in caplog.text
