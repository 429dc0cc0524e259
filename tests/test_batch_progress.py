"""The batch progress page, its JSON and the links to it from the send and resend messages."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.sending.progress import batch_progress, queue_progress
from mailops.services import send_test_mail
from tests.admin_fixtures import changelist_url
from tests.maillog_fixtures import CHANGELIST, make_batch, make_log

pytestmark = pytest.mark.django_db


def page_url(batch_id: Any) -> str:
    return reverse("admin:mailops_batch", kwargs={"batch_id": batch_id})


def json_url(batch_id: Any) -> str:
    return reverse("admin:mailops_batch_progress", kwargs={"batch_id": batch_id})


def mixed_batch(operator: Any = None) -> uuid.UUID:
    """A batch part-way through: 3 sent (1 of them delivered), 1 failed, 1 rejected, 5 to go.

    Of the 4 queued rows, 2 wait half an hour for a retry.
    """
    batch_id = uuid.uuid4()
    common = {"batch_id": batch_id, "mailer": "relay", "triggered_by": operator}
    make_batch(2, status=MailStatus.SENT, **common)
    make_log(status=MailStatus.DELIVERED, recipient="d@example.com", **common)
    make_log(status=MailStatus.FAILED, recipient="f@example.com", error="550 no", **common)
    make_log(status=MailStatus.REJECTED, recipient="", error="no address", **common)
    make_log(status=MailStatus.SENDING, recipient="s@example.com", **common)
    make_log(status=MailStatus.QUEUED, recipient="q1@example.com", **common)
    make_log(status=MailStatus.QUEUED, recipient="q2@example.com", **common)
    later = timezone.now() + timedelta(minutes=30)
    for name in ("w1", "w2"):
        make_log(
            status=MailStatus.QUEUED,
            recipient=f"{name}@example.com",
            next_attempt_at=later,
            **common,
        )
    return batch_id


# --- the numbers ------------------------------------------------------------------------


def test_progress_counts_a_batch_by_status_in_two_queries(django_assert_num_queries) -> None:
    batch_id = mixed_batch()
    make_batch(3, status=MailStatus.QUEUED)  # another batch: not counted

    # One GROUP BY status, one look for rows a worker has still to write.
    with django_assert_num_queries(2):
        progress = batch_progress(batch_id)

    assert progress is not None
    assert (progress.total, progress.done, progress.percent) == (10, 5, 50)
    assert (progress.sent, progress.failed, progress.rejected) == (3, 1, 1)
    assert (progress.queued, progress.sending, progress.waiting) == (4, 1, 2)
    assert progress.resumes_at is not None
    assert progress.resumes_at > timezone.now() + timedelta(minutes=29)
    assert (progress.mailer, progress.trigger) == ("relay", MailTrigger.ADMIN_ACTION)
    assert not progress.finished
    assert progress.state == "in_progress"
    assert progress.line() == (
        "[##########..........] 5/10 sent 3, failed 1, rejected 1, waiting 2 (until "
        f"{timezone.localtime(progress.resumes_at):%H:%M:%S})"
    )


def test_a_batch_with_only_held_rows_left_is_waiting_and_a_done_one_finished() -> None:
    batch_id = uuid.uuid4()
    make_batch(3, batch_id=batch_id, status=MailStatus.SENT)
    held = make_log(
        batch_id=batch_id,
        status=MailStatus.QUEUED,
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    progress = batch_progress(batch_id)
    assert progress is not None
    assert progress.state == "waiting"

    MailLog.objects.filter(pk=held.pk).update(status=MailStatus.FAILED, next_attempt_at=None)
    progress = batch_progress(batch_id)
    assert progress is not None
    assert (progress.finished, progress.state, progress.percent) == (True, "finished", 100)
    assert progress.line() == "[####################] 4/4 sent 3, failed 1"


def test_an_unknown_batch_has_no_progress() -> None:
    assert batch_progress(uuid.uuid4()) is None


def test_queue_progress_adds_a_runs_outcomes_to_what_still_waits() -> None:
    make_batch(4, status=MailStatus.QUEUED)
    progress = queue_progress({MailStatus.SENT: 10, MailStatus.FAILED: 1, MailStatus.QUEUED: 2})
    # The run's "queued" (put back for a retry) is in the log's count already.
    assert (progress.total, progress.done, progress.sent, progress.queued) == (15, 11, 10, 4)


# --- the page ---------------------------------------------------------------------------


def test_page_shows_counts_bar_facts_and_links(auditor: Client) -> None:
    operator = auditor.user  # type: ignore[attr-defined]
    batch_id = mixed_batch(operator)

    response = auditor.get(page_url(batch_id))

    assert response.status_code == 200
    html = response.content.decode()
    numbers = response.context["numbers"]
    assert (numbers["queued"], numbers["sending"], numbers["sent"]) == (4, 1, 3)
    assert (numbers["failed"], numbers["rejected"], numbers["delivered"]) == (1, 1, 1)
    for field, value in [("queued", 4), ("sending", 1), ("sent", 3), ("failed", 1)]:
        assert f'data-field="{field}">{value}<' in html
    assert 'data-field="waiting">2<' in html
    assert numbers["resumes_at_display"] in html
    assert 'data-segment="sent"' in html
    assert 'x="0.000%" y="0" width="30.000%"' in html  # 3 of 10 sent
    assert "relay" in html
    assert "Admin action" in html
    assert str(operator) in html
    assert f'href="{CHANGELIST}?batch_id={batch_id}"' in html
    assert f'href="{CHANGELIST}?batch_id={batch_id}&amp;status__exact=failed"' in html
    assert f"Batch {batch_id}" in html
    assert "mailops/batch_progress.js" in html
    assert 'data-finished="false"' in html
    assert '<meta http-equiv="refresh"' in html  # inside <noscript>, while unfinished
    breadcrumbs = html.split('class="breadcrumbs"')[1].split("</ol>")[0]
    assert "Mail operations" in breadcrumbs
    assert "Mail log" in breadcrumbs


def test_a_finished_batch_page_stops_refreshing(auditor: Client) -> None:
    (row,) = make_batch(1, status=MailStatus.SENT)

    html = auditor.get(page_url(row.batch_id)).content.decode()

    assert 'data-finished="true"' in html
    assert "Finished" in html
    assert 'http-equiv="refresh"' not in html


def test_json_reports_the_numbers_the_page_polls(auditor: Client) -> None:
    batch_id = mixed_batch()

    response = auditor.get(json_url(batch_id))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    data = response.json()
    assert data["batch_id"] == str(batch_id)
    assert {k: data[k] for k in ("total", "done", "percent", "finished", "state")} == {
        "total": 10,
        "done": 5,
        "percent": 50,
        "finished": False,
        "state": "in_progress",
    }
    assert {k: data[k] for k in ("queued", "waiting", "sending", "sent", "failed", "rejected")} == {
        "queued": 4,
        "waiting": 2,
        "sending": 1,
        "sent": 3,
        "failed": 1,
        "rejected": 1,
    }
    assert data["statuses"] == {
        "sent": 2,
        "delivered": 1,
        "failed": 1,
        "rejected": 1,
        "sending": 1,
        "queued": 4,
    }
    assert [s["key"] for s in data["segments"]] == [
        "sent",
        "failed",
        "rejected",
        "sending",
        "queued",
    ]
    assert data["segments"][1] == {
        "key": "failed",
        "label": "failed",
        "count": 1,
        "x": "30.000%",
        "width": "10.000%",
    }
    assert data["resumes_at"]
    assert data["resumes_at_display"]
    assert data["started_at"]


def test_json_follows_the_rows_as_they_change(auditor: Client) -> None:
    rows = make_batch(4, status=MailStatus.QUEUED)
    batch_id = rows[0].batch_id
    assert auditor.get(json_url(batch_id)).json()["done"] == 0

    MailLog.objects.filter(pk__in=[r.pk for r in rows[:3]]).update(status=MailStatus.SENT)
    data = auditor.get(json_url(batch_id)).json()

    assert (data["done"], data["sent"], data["finished"]) == (3, 3, False)
    MailLog.objects.filter(pk=rows[3].pk).update(status=MailStatus.FAILED)
    assert auditor.get(json_url(batch_id)).json()["finished"] is True


def test_page_and_json_need_the_view_permission(admin_client_for) -> None:
    (row,) = make_batch(1)
    stranger = admin_client_for("stranger", perms=("mailops.send_test_mail",))

    assert stranger.get(page_url(row.batch_id)).status_code == 403
    assert stranger.get(json_url(row.batch_id)).status_code == 403

    anonymous = Client()
    response = anonymous.get(page_url(row.batch_id))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_an_unknown_batch_is_a_404_page_not_an_error(auditor: Client) -> None:
    missing = uuid.uuid4()

    assert auditor.get(page_url(missing)).status_code == 404
    response = auditor.get(json_url(missing))
    assert response.status_code == 404
    assert response.json() == {"error": f"There is no batch {missing} in the mail log."}


def test_the_page_costs_a_fixed_number_of_queries(auditor: Client) -> None:
    small = mixed_batch(auditor.user)  # type: ignore[attr-defined]
    large = uuid.uuid4()
    make_batch(40, batch_id=large, status=MailStatus.SENT, triggered_by=auditor.user)  # type: ignore[attr-defined]

    def queries(batch_id: uuid.UUID) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert auditor.get(page_url(batch_id)).status_code == 200
        return len(captured)

    assert queries(small) == queries(large)


# --- links from the messages --------------------------------------------------------------


OPERATOR_PERMS = ("auth.view_user", "mailops.send_test_mail", "mailops.view_maillog")


def run_user_action(client: Client, users: list[Any]) -> Any:
    return client.post(
        changelist_url(),
        {
            "action": "send_test_mail",
            "_selected_action": [str(u.pk) for u in users],
            "post": "yes",
            "mailer": "default",
            "subject": "Progress check",
            "body": "Hello",
        },
        follow=True,
    )


def test_user_action_message_links_to_the_batch_page(admin_client_for, make_user) -> None:
    operator = admin_client_for("operator", perms=OPERATOR_PERMS)
    users = [make_user("alice", "alice@example.com"), make_user("bob", "bob@example.com")]

    response = run_user_action(operator, users)

    (row,) = MailLog.objects.filter(recipient="alice@example.com")
    ((level, message),) = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert level == "success"
    assert f"?batch_id={row.batch_id}" in message  # the filtered mail log, as before
    assert f'href="{page_url(row.batch_id)}"' in message
    assert "Batch overview." in message


def test_a_batch_handed_to_the_worker_links_to_follow_its_progress(
    admin_client_for, make_user, worker_backend, settings
) -> None:
    operator = admin_client_for("operator", perms=OPERATOR_PERMS)
    users = [make_user(f"user{i}", f"user{i}@example.com") for i in range(3)]
    # Three users are a "large" batch here, so it goes to the worker.
    settings.MAILOPS = {**settings.MAILOPS, "ASYNC_THRESHOLD": 2}

    response = run_user_action(operator, users)

    batch_id = MailLog.objects.values_list("batch_id", flat=True).first()
    message = str(list(response.context["messages"])[-1])
    assert "3 queued for the task worker" in message
    assert f'href="{page_url(batch_id)}"' in message
    assert "Follow its progress." in message
    # The page it links to shows the queued batch, refreshing itself.
    page = operator.get(page_url(batch_id))
    assert page.context["progress"].queued == 3
    assert 'data-finished="false"' in page.content.decode()


def test_the_progress_link_needs_the_view_permission(admin_client_for, make_user) -> None:
    operator = admin_client_for("sender", perms=("auth.view_user", "mailops.send_test_mail"))
    user = make_user("alice", "alice@example.com")

    response = run_user_action(operator, [user])

    message = str(list(response.context["messages"])[-1])
    assert "batch/" not in message
    assert "Batch " in message


def test_resend_message_links_to_the_new_batch_page(auditor: Client) -> None:
    originals = make_batch(2, status=MailStatus.FAILED, error="421 busy")

    done = auditor.post(
        CHANGELIST,
        {"action": "resend", "_selected_action": [o.pk for o in originals], "post": "yes"},
        follow=True,
    )

    new_batch = MailLog.objects.filter(trigger=MailTrigger.RESEND).values_list(
        "batch_id", flat=True
    )[0]
    message = str(list(done.context["messages"])[-1])
    assert f"?batch_id={new_batch}" in message
    assert f'href="{page_url(new_batch)}"' in message
    assert auditor.get(page_url(new_batch)).context["progress"].sent == 2


def test_send_service_batches_are_visible_on_the_page(auditor: Client) -> None:
    summary = send_test_mail(
        from_addresses(["a@example.com", "not-an-address"]), trigger=MailTrigger.API
    )

    data = auditor.get(json_url(summary.batch_id)).json()

    assert (data["sent"], data["rejected"], data["finished"]) == (1, 1, True)


def test_a_batch_being_verified_is_unfinished_until_the_mailbox_was_read(
    auditor: Client,
) -> None:
    log = make_log(status=MailStatus.SENT)
    MailLog.objects.filter(pk=log.pk).update(arrival="pending")
    url = reverse("admin:mailops_batch_progress", kwargs={"batch_id": log.batch_id})

    verifying = auditor.get(url).json()
    assert (verifying["finished"], verifying["state"], verifying["verifying"]) == (
        False,
        "verifying",
        1,
    )
    assert verifying["arrival_text"] == "being verified: 1"

    MailLog.objects.filter(pk=log.pk).update(arrival="inbox")
    done = auditor.get(url).json()
    assert (done["finished"], done["verifying"]) == (True, 0)
    assert done["arrival_text"] == "arrived in the inbox: 1"
    page = auditor.get(reverse("admin:mailops_batch", kwargs={"batch_id": log.batch_id}))
    assert "arrived in the inbox: 1" in page.content.decode()
