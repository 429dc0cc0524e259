"""The mail log audit page: read-only, filters, search, summary, detail, resend."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.options import ActionLocation
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailops.admin import MailLogAdmin
from mailops.admin.filters import distinct_values
from mailops.models import MailEvent, MailLog, MailStatus, MailTrigger
from tests.maillog_fixtures import (
    CHANGELIST,
    changelist_rows,
    make_batch,
    make_log,
)

pytestmark = pytest.mark.django_db
UTC = ZoneInfo("UTC")


def change_url(log: MailLog) -> str:
    return f"{CHANGELIST}{log.pk}/change/"


def offered_actions(client: Client) -> set[str]:
    form = client.get(CHANGELIST).context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices if name}


# --- read-only ------------------------------------------------------------------


def test_nobody_may_add_entries_not_even_a_superuser(admin_client: Client) -> None:
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}add/", {"recipient": "x@example.com"}).status_code == 403
    assert MailLog.objects.count() == 0


def test_a_post_to_an_entry_changes_nothing(admin_client: Client) -> None:
    log = make_log(status=MailStatus.FAILED, error="550 no such user")

    response = admin_client.post(
        change_url(log), {"status": "sent", "error": "", "recipient": "other@example.com"}
    )

    assert response.status_code == 403
    log.refresh_from_db()
    assert (log.status, log.error, log.recipient) == ("failed", "550 no such user", log.recipient)


def test_the_entry_page_is_read_only(auditor: Client) -> None:
    log = make_log()

    response = auditor.get(change_url(log))

    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert b'name="_save"' not in response.content
    assert b"<textarea" not in response.content


def test_staff_without_the_view_permission_cannot_open_the_log(
    admin_client_for: Callable[..., Client],
) -> None:
    outsider = admin_client_for("outsider", perms=("mailops.send_test_mail",))

    assert outsider.get(CHANGELIST).status_code == 403
    assert outsider.get(change_url(make_log())).status_code == 403


def test_only_superusers_may_delete(
    admin_client_for: Callable[..., Client], admin_client: Client
) -> None:
    log = make_log()
    staff = admin_client_for("deleter", perms=("mailops.view_maillog", "mailops.delete_maillog"))

    assert staff.get(f"{CHANGELIST}{log.pk}/delete/").status_code == 403
    assert staff.post(f"{CHANGELIST}{log.pk}/delete/", {"post": "yes"}).status_code == 403
    assert offered_actions(staff) == set()
    assert MailLog.objects.filter(pk=log.pk).exists()

    assert admin_client.post(f"{CHANGELIST}{log.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not MailLog.objects.filter(pk=log.pk).exists()


# --- the list ----------------------------------------------------------------------


def test_the_list_shows_each_attempt_with_a_status_badge_and_a_short_error(
    auditor: Client, make_user: Callable[..., Any]
) -> None:
    alice = make_user("alice", "alice@example.com")
    make_log(
        status=MailStatus.FAILED,
        recipient="alice@example.com",
        user=alice,
        triggered_by=auditor.user,  # type: ignore[attr-defined]
        mailer="gmail",
        subject="Quarterly relay check",
        error="550 5.1.1 " + "mailbox unavailable " * 20,
    )

    response = auditor.get(CHANGELIST)

    html = response.content.decode()
    assert '<span class="mailops-badge mailops-status-failed">Failed</span>' in html
    assert "alice@example.com" in html
    assert "Quarterly relay check" in html
    assert "550 5.1.1 mailbox unavailable" in html
    # Truncated in the cell; the whole error is its tooltip (and on the entry's page).
    error = "550 5.1.1 " + " ".join(["mailbox unavailable"] * 20)
    assert f'<span class="mailops-short-error" title="{error}">' in html
    assert html.count("mailbox unavailable") < 20 + 20
    assert "mailops/admin.css" in html
    assert response.context["cl"].show_full_result_count is False


def test_the_list_runs_no_full_count_no_distinct_and_a_bounded_number_of_queries(
    auditor: Client, django_assert_max_num_queries: Any
) -> None:
    for i in range(30):
        make_log(recipient=f"r{i}@example.com", mailer=("default", "gmail")[i % 2])

    # One more than before the daily roll-up: the first day not closed by a purge.
    with CaptureQueriesContext(connection) as queries, django_assert_max_num_queries(11):
        response = auditor.get(CHANGELIST)

    assert response.status_code == 200
    log_queries = [q["sql"] for q in queries if "mailops_maillog" in q["sql"]]
    # Counting is bounded: one COUNT(*) over at most count_limit + 1 rows,
    # then (for that few) the counts per status, whose total is the
    # paginator's count; no second full-table count.
    counts = [q for q in log_queries if "COUNT(*)" in q]
    limit = MailLogAdmin.count_limit + 1
    assert re.match(rf"SELECT COUNT\(\*\) FROM \(SELECT .* LIMIT {limit}\) subquery$", counts[0])
    assert len(counts) == 2
    assert "GROUP BY" in counts[1]
    assert not [q for q in log_queries if re.search(r"SELECT DISTINCT", q)]
    assert response.context["cl"].result_count == 30


def test_filters_by_status_mailer_trigger_and_date(auditor: Client) -> None:
    now = timezone.now()
    failed = make_log(status=MailStatus.FAILED, mailer="gmail")
    resent = make_log(trigger=MailTrigger.RESEND, mailer="backup")
    old = make_log(created_at=now - timedelta(days=40))

    def shown(query: str) -> set[int]:
        response = auditor.get(CHANGELIST + query)
        assert response.status_code == 200, response
        return {log.pk for log in changelist_rows(response)}

    assert shown("?status__exact=failed") == {failed.pk}
    assert shown("?mailer=backup") == {resent.pk}
    assert shown("?trigger__exact=resend") == {resent.pk}
    week_ago = timezone.localtime(now - timedelta(days=7)).isoformat()
    assert old.pk not in shown("?" + urlencode({"created_at__gte": week_ago}))
    assert shown(
        f"?created_at__year={old.created_at.year}&created_at__month="
        f"{timezone.localtime(old.created_at).month}"
    ) >= {old.pk}


def test_the_mailer_filter_offers_the_mailers_found_in_the_log(auditor: Client) -> None:
    for mailer in ("gmail", "default", "gmail", "ses"):
        make_log(mailer=mailer)

    response = auditor.get(CHANGELIST)

    assert distinct_values(MailLog, "mailer") == ["default", "gmail", "ses"]
    spec = next(
        s
        for s in response.context["cl"].filter_specs
        if getattr(s, "parameter_name", "") == "mailer"
    )
    assert [value for value, _ in spec.lookup_choices] == ["default", "gmail", "ses"]


def test_the_batch_filter_shows_one_send_and_says_so_in_the_sidebar(auditor: Client) -> None:
    batch = make_batch(3)
    make_batch(2)

    response = auditor.get(f"{CHANGELIST}?batch_id={batch[0].batch_id}")

    assert response.status_code == 200
    assert {log.pk for log in changelist_rows(response)} == {log.pk for log in batch}
    assert str(batch[0].batch_id) in response.content.decode()
    assert response.context["cl"].has_active_filters


def test_a_malformed_batch_id_is_an_invalid_filter_not_an_error(auditor: Client) -> None:
    make_log()

    response = auditor.get(f"{CHANGELIST}?batch_id=not-a-uuid")

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("alice@example.com", {"alice"}),
        ("ALICE@", {"alice"}),  # prefix, not case-sensitive
        ("bob", {"bob"}),
        ("<abc.123@mailops.example>", {"alice"}),  # Message-ID as in the header
        ("abc.123@mailops.example", {"alice"}),  # ... or without the brackets
        ("0102018f-ses-id", {"bob"}),  # provider message id
        ("Quarterly relay", {"bob"}),  # subject prefix, spaces and all
        ("example.com", set()),  # not a prefix of anything: no contains-scan
        ("relay check", set()),
    ],
)
def test_search_uses_prefixes_and_exact_ids(auditor: Client, term: str, expected: set[str]) -> None:
    make_log(recipient="alice@example.com", message_id="<abc.123@mailops.example>")
    make_log(
        recipient="bob@example.com",
        esp_message_id="0102018f-ses-id",
        subject="Quarterly relay check",
    )

    response = auditor.get(CHANGELIST, {"q": term})

    assert {log.recipient.split("@")[0] for log in changelist_rows(response)} == expected


def test_the_search_box_explains_what_it_matches(auditor: Client) -> None:
    html = auditor.get(CHANGELIST).content.decode()

    assert "starts with the text" in html
    assert "Message-ID" in html


def test_only_time_is_sortable(auditor: Client) -> None:
    make_log()
    response = auditor.get(CHANGELIST)

    assert response.context["cl"].sortable_by == ("logged_at",)


def test_the_date_hierarchy_offers_the_years_between_first_and_last_entry(
    auditor: Client,
) -> None:
    make_log(created_at=datetime(2023, 4, 2, 12, tzinfo=UTC))
    make_log(created_at=datetime(2025, 1, 9, 12, tzinfo=UTC))

    html = auditor.get(CHANGELIST).content.decode()
    assert all(f"?created_at__year={y}" in html for y in (2023, 2024, 2025))

    drilled = auditor.get(f"{CHANGELIST}?created_at__year=2023").content.decode()
    assert "created_at__month=4" in drilled
    assert "created_at__month=5" not in drilled


# --- summary above the list ------------------------------------------------------------


def test_the_summary_counts_follow_the_current_filter(auditor: Client) -> None:
    for status, n in ((MailStatus.SENT, 3), (MailStatus.FAILED, 2), (MailStatus.REJECTED, 1)):
        for i in range(n):
            make_log(status=status, recipient=f"{status}{i}@example.com")

    everything = auditor.get(CHANGELIST).context["mailops_summary"]
    failed_only = auditor.get(CHANGELIST + "?status__exact=failed").context["mailops_summary"]
    searched = auditor.get(CHANGELIST, {"q": "sent0@"}).context["mailops_summary"]

    assert everything.counts == {"sent": 3, "failed": 2, "rejected": 1}
    assert failed_only.counts == {"failed": 2}
    assert searched.counts == {"sent": 1}
    html = auditor.get(CHANGELIST + "?status__exact=failed").content.decode()
    assert '<span class="mailops-count" data-status="failed">2</span>' in html
    assert 'data-status="sent"' not in html


def test_the_chart_shows_sent_and_failed_per_day_for_14_days(auditor: Client) -> None:
    now = timezone.now()
    make_log(status=MailStatus.SENT, created_at=now)
    make_log(status=MailStatus.DELIVERED, created_at=now)
    make_log(status=MailStatus.FAILED, created_at=now)
    make_log(status=MailStatus.FAILED, created_at=now - timedelta(days=3))
    make_log(status=MailStatus.SENT, created_at=now - timedelta(days=20))

    html = auditor.get(CHANGELIST).content.decode()

    svg = re.search(r"<svg class=\"mailops-chart-svg\".*?</svg>", html, re.S)
    assert svg is not None
    days = re.findall(r'data-day="([\d-]+)" data-sent="(\d+)" data-failed="(\d+)"', svg.group())
    assert len(days) == 14
    today = timezone.localdate(now)
    assert days[-1] == (str(today), "2", "1")
    assert days[-4] == (str(today - timedelta(days=3)), "0", "1")
    assert sum(int(s) for _, s, _ in days) == 2  # the 20-day-old one is not in the chart
    assert "<script" not in svg.group()
    assert "http" not in svg.group().replace("http://www.w3.org/2000/svg", "")


# --- detail page -------------------------------------------------------------------------


def test_the_entry_page_shows_everything_recorded_and_the_full_error(auditor: Client) -> None:
    error = "451 4.7.0 Try again later\n" + "x" * 300 + " END-OF-ERROR"
    log = make_log(
        status=MailStatus.FAILED,
        recipient="carol@example.com",
        message_id="<full.1@mailops.example>",
        esp_message_id="esp-77",
        error=error,
        smtp_code=451,
        attempts=3,
        body="The body of the message",
    )

    html = auditor.get(change_url(log)).content.decode()

    for text in (
        "carol@example.com",
        "&lt;full.1@mailops.example&gt;",
        "esp-77",
        "451",
        "END-OF-ERROR",
        "x" * 300,
        "The body of the message",
        str(log.batch_id),
        "mailops-status-failed",
    ):
        assert text in html, text


def test_the_entry_page_lists_the_other_rows_of_its_batch(auditor: Client) -> None:
    rows = make_batch(3, status=MailStatus.SENT)
    MailLog.objects.filter(pk=rows[2].pk).update(status=MailStatus.FAILED, error="550 gone")
    make_log(recipient="elsewhere@example.com")

    response = auditor.get(change_url(rows[0]))

    html = response.content.decode()
    assert [r.pk for r in response.context["batch_rows"]] == [rows[1].pk, rows[2].pk]
    assert response.context["batch_summary"].counts == {"sent": 2, "failed": 1}
    assert "member1@example.com" in html
    assert "member2@example.com" in html
    assert "550 gone" in html
    assert "elsewhere@example.com" not in html
    assert f"?batch_id={rows[0].batch_id}" in html


def test_the_entry_page_shows_the_provider_timeline(auditor: Client) -> None:
    log = make_log(esp_message_id="esp-1")
    MailEvent.objects.create(
        log=log,
        event_type="delivered",
        esp="postmark",
        fingerprint="f1",
        occurred_at=timezone.now(),
        description="Delivered to mx.example.com",
    )

    html = auditor.get(change_url(log)).content.decode()

    assert "Delivered to mx.example.com" in html


# --- resend ----------------------------------------------------------------------------


def post_action(
    client: Client, logs: list[MailLog], *, confirm: bool, query: str = "", **extra: str
) -> Any:
    data: dict[str, Any] = {"action": "resend", "_selected_action": [log.pk for log in logs]}
    if confirm:
        data["post"] = "yes"
    data.update(extra)
    return client.post(CHANGELIST + query, data, follow=confirm)


def test_resend_asks_first_then_sends_one_new_row_per_message(auditor: Client) -> None:
    originals = make_batch(
        2, status=MailStatus.FAILED, error="421 busy", subject="Hello there", body="Original body"
    )

    confirm_page = post_action(auditor, originals, confirm=False)

    assert confirm_page.status_code == 200
    assert "2 messages will be sent again" in confirm_page.content.decode()
    assert MailLog.objects.count() == 2
    assert not mail.outbox
    assert confirm_page.content.decode().count('name="_selected_action"') == 2

    done = post_action(auditor, originals, confirm=True)

    new = MailLog.objects.filter(trigger=MailTrigger.RESEND).order_by("recipient")
    assert [(n.recipient, n.status, n.subject, n.body, n.mailer) for n in new] == [
        ("member0@example.com", "sent", "Hello there", "Original body", "default"),
        ("member1@example.com", "sent", "Hello there", "Original body", "default"),
    ]
    assert {n.triggered_by_id for n in new} == {auditor.user.pk}  # type: ignore[attr-defined]
    assert len({n.batch_id for n in new}) == 1
    assert new[0].batch_id != originals[0].batch_id
    assert len(mail.outbox) == 2
    message = str(list(done.context["messages"])[-1])
    assert "Resent: 2 sent, 0 failed, 0 queued." in message
    assert f"?batch_id={new[0].batch_id}" in message
    for original in originals:
        original.refresh_from_db()
        assert (original.status, original.error) == ("failed", "421 busy")
        entry = LogEntry.objects.get(object_id=str(original.pk))
        assert entry.action_flag == CHANGE
        assert str(new[0].batch_id) in entry.change_message


def test_resend_skips_rejected_rows_and_says_why(auditor: Client) -> None:
    failed = make_log(status=MailStatus.FAILED, recipient="ok@example.com")
    rejected = make_log(status=MailStatus.REJECTED, recipient="", error="user 'x' has no email")
    queued = make_log(status=MailStatus.QUEUED, recipient="later@example.com")

    page = post_action(auditor, [failed, rejected, queued], confirm=False).content.decode()
    assert "1 entry: rejected (no valid address)" in page
    assert "1 entry: still being delivered" in page

    done = post_action(auditor, [failed, rejected, queued], confirm=True)

    texts = [str(m) for m in done.context["messages"]]
    assert "1 selected entry was not resent: rejected (no valid address)." in texts
    assert "1 selected entry was not resent: still being delivered." in texts
    assert list(
        MailLog.objects.filter(trigger=MailTrigger.RESEND).values_list("recipient", flat=True)
    ) == ["ok@example.com"]


def test_nothing_resendable_means_no_confirm_button(auditor: Client) -> None:
    rejected = make_log(status=MailStatus.REJECTED, recipient="")

    page = post_action(auditor, [rejected], confirm=False).content.decode()

    assert "None of the selected entries can be resent." in page
    assert "Yes, resend" not in page


def test_resend_is_not_offered_without_the_permission_and_a_forged_post_sends_nothing(
    admin_client_for: Callable[..., Client],
) -> None:
    viewer = admin_client_for("viewer", perms=("mailops.view_maillog",))
    log = make_log(status=MailStatus.FAILED)

    assert offered_actions(viewer) == set()

    post_action(viewer, [log], confirm=True)

    assert not MailLog.objects.filter(trigger=MailTrigger.RESEND).exists()
    assert not mail.outbox


def test_resend_through_a_real_smtp_server(auditor: Client, smtp_server: Any, settings) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "relay": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": smtp_server.options(),
        },
    }
    original = make_log(
        status=MailStatus.FAILED,
        mailer="relay",
        recipient="dave@example.com",
        subject="Relay probe",
    )

    post_action(auditor, [original], confirm=True)

    new = MailLog.objects.get(trigger=MailTrigger.RESEND)
    assert (new.status, new.mailer, new.recipient) == ("sent", "relay", "dave@example.com")
    assert [m.message["Subject"] for m in smtp_server.messages] == ["Relay probe"]


def test_resend_to_a_mailer_that_is_gone_reports_it_without_an_error_page(
    auditor: Client,
) -> None:
    log = make_log(status=MailStatus.FAILED, mailer="retired")

    page = post_action(auditor, [log], confirm=False)
    assert "Unknown mailer" in page.content.decode()

    done = post_action(auditor, [log], confirm=True)

    assert done.status_code == 200
    assert any(
        "was not resent: Unknown mailer 'retired'" in str(m) for m in done.context["messages"]
    )
    assert not MailLog.objects.filter(trigger=MailTrigger.RESEND).exists()


def test_resend_of_all_filtered_rows_across_pages(auditor: Client) -> None:
    for i in range(5):
        make_log(status=MailStatus.FAILED, recipient=f"f{i}@example.com")
    make_log(status=MailStatus.SENT, recipient="fine@example.com")
    on_page = list(MailLog.objects.failed()[:1])

    page = post_action(
        auditor, on_page, confirm=False, query="?status__exact=failed", select_across="1", index="0"
    )
    assert "5 messages will be sent again" in page.content.decode()
    assert 'name="select_across" value="1"' in page.content.decode()

    post_action(auditor, on_page, confirm=True, query="?status__exact=failed", select_across="1")

    resent = set(
        MailLog.objects.filter(trigger=MailTrigger.RESEND).values_list("recipient", flat=True)
    )
    assert resent == {f"f{i}@example.com" for i in range(5)}


def test_resend_from_the_entry_page(auditor: Client) -> None:
    log = make_log(status=MailStatus.FAILED, recipient="erin@example.com")
    field = f"{ActionLocation.CHANGE_FORM.value}-action"

    page = auditor.post(change_url(log), {field: "resend", "_selected_action": [log.pk]})
    assert page.status_code == 200
    assert f'name="{field}" value="resend"' in page.content.decode()

    done = auditor.post(
        change_url(log),
        {field: "resend", "_selected_action": [log.pk], "post": "yes"},
        follow=True,
    )

    assert done.redirect_chain[-1][0].endswith(change_url(log))
    assert MailLog.objects.get(trigger=MailTrigger.RESEND).recipient == "erin@example.com"


def test_resend_batches_are_linkable_with_the_batch_filter(auditor: Client) -> None:
    log = make_log(status=MailStatus.FAILED)
    post_action(auditor, [log], confirm=True)
    new = MailLog.objects.get(trigger=MailTrigger.RESEND)

    response = auditor.get(f"{CHANGELIST}?batch_id={new.batch_id}")

    assert [r.pk for r in changelist_rows(response)] == [new.pk]
    assert new.batch_id != log.batch_id


def test_the_list_links_the_mailers_page(auditor: Client) -> None:
    html = auditor.get(CHANGELIST).content.decode()

    assert f'href="{CHANGELIST}mailers/"' in html
    assert auditor.get(f"{CHANGELIST}mailers/").status_code == 200
