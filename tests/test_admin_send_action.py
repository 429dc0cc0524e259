"""The "Send test mail to selected users" admin action, driven through the admin like a browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailops.admin.users import (
    MAX_LISTED_WITHOUT_ADDRESS,
    SendTestMailAdminMixin,
    send_test_mail_action,
)
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.sending.composition import default_subject
from tests import unreachable_broker
from tests.admin_fixtures import changelist_url, form_fields, shown_messages

pytestmark = pytest.mark.django_db

User = get_user_model()
CONFIRM_FORM = "send-test-mail-form"

# What an operator of the action needs: see users, send, read the log.
OPERATOR_PERMS = ("auth.view_user", "mailops.send_test_mail", "mailops.view_maillog")


@pytest.fixture
def operator(make_user) -> Any:
    return make_user("operator", "operator@example.com", perms=OPERATOR_PERMS, is_staff=True)


@pytest.fixture
def operator_client(client, operator) -> Any:
    client.force_login(operator)
    return client


def use_smtp(settings: Any, options: dict[str, Any]) -> None:
    settings.MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options},
        "outbox": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    }


def ids_of(users: list[Any]) -> list[str]:
    return [str(user.pk) for user in users]


def offered_actions(client: Any) -> dict[str, str]:
    """The changelist's action choices, ``{}`` when it shows no action box."""
    action_form = client.get(changelist_url()).context["action_form"]
    return dict(action_form.fields["action"].choices) if action_form else {}


def choose_action(client: Any, ids: list[str], *, query: str = "", **extra: str) -> Any:
    """Tick ``ids`` on the changelist and run the action (the first POST)."""
    data: dict[str, Any] = {"action": "send_test_mail", "_selected_action": ids, "index": "0"}
    data.update(extra)
    return client.post(changelist_url(query), data)


def confirm(client: Any, page: Any, *, query: str = "", **changes: str) -> Any:
    """Submit the confirmation page's form as a browser would, with ``changes`` typed in."""
    fields: dict[str, Any] = form_fields(page.content.decode(), CONFIRM_FORM)
    for name, value in changes.items():
        fields[name] = [value]
    return client.post(changelist_url(query), fields, follow=True)


# --- who may use it -----------------------------------------------------------------


def test_action_is_offered_only_with_the_send_test_mail_permission(
    client, make_user, operator
) -> None:
    viewer = make_user("viewer", "viewer@example.com", perms=("auth.view_user",), is_staff=True)

    client.force_login(viewer)
    assert "send_test_mail" not in offered_actions(client)

    client.force_login(operator)
    assert offered_actions(client)["send_test_mail"] == "Send test mail to selected users"


@pytest.mark.parametrize(
    "perms",
    [
        ("auth.view_user",),
        # With another action on offer the admin validates the action name.
        ("auth.view_user", "auth.delete_user"),
    ],
)
def test_forged_post_without_the_permission_is_refused_and_sends_nothing(
    client, make_user, recipients_users, perms
) -> None:
    viewer = make_user("viewer", "viewer@example.com", perms=perms, is_staff=True)
    client.force_login(viewer)

    # The changelist's POST (with "index"), then the confirmation page's:
    # refused as such (403), not answered with the list or "No action selected".
    for step in ({"index": "0"}, {"post": "yes", "mailer": "default", "subject": "x", "body": "x"}):
        response = client.post(
            changelist_url(),
            {"action": "send_test_mail", "_selected_action": ids_of(recipients_users), **step},
        )
        assert response.status_code == 403
        assert "send_test_mail_confirmation" not in str(response.templates)

    assert not MailLog.objects.exists()
    assert mail.outbox == []


def test_the_action_itself_refuses_a_request_without_the_permission(
    make_user, recipients_users
) -> None:
    # Defence in depth: an admin that lists the action without filtering it.
    viewer = make_user("viewer", perms=("auth.view_user",), is_staff=True)
    request = RequestFactory().post("/", {"post": "yes"})
    request.user = viewer

    with pytest.raises(PermissionDenied):
        send_test_mail_action(admin.site.get_model_admin(User), request, User.objects.all())
    assert not MailLog.objects.exists()


def test_mixin_adds_the_action_to_any_model_admin_but_not_in_popups(operator) -> None:
    class PlainUserAdmin(SendTestMailAdminMixin, admin.ModelAdmin):
        pass

    model_admin = PlainUserAdmin(User, admin.AdminSite(name="other"))
    request = RequestFactory().get("/")
    request.user = operator
    assert "send_test_mail" in model_admin.get_actions(request)

    popup = RequestFactory().get("/", {"_popup": "1"})
    popup.user = operator
    assert model_admin.get_actions(popup) == {}


# --- the confirmation page -------------------------------------------------------------


def test_confirmation_page_shows_who_gets_mail_who_is_skipped_and_the_defaults(
    operator_client, recipients_users
) -> None:
    page = choose_action(operator_client, ids_of(recipients_users))

    assert page.status_code == 200
    assert "admin/mailops/send_test_mail_confirmation.html" in [t.name for t in page.templates]
    assert page.context["with_address"] == 3
    html = page.content.decode()
    assert "<strong>3</strong> selected users will get a test mail." in html
    assert "1 selected user has no email address" in html
    nomail = recipients_users[3]
    assert f'href="{reverse("admin:auth_user_change", args=[nomail.pk])}">nomail</a>' in html
    # Breadcrumbs back to the user list.
    assert f'<a href="{changelist_url()}">Users</a>' in html

    fields = form_fields(html, CONFIRM_FORM)
    assert fields["mailer"] == ["default"]
    mailer_choices = [value for value, _label in page.context["form"].fields["mailer"].choices]
    assert mailer_choices == ["default", "outbox"]
    assert fields["subject"] == [default_subject("default")]
    assert fields["body"][0].startswith("This is a test mail sent by mailops")
    assert sorted(fields["_selected_action"]) == sorted(ids_of(recipients_users))
    assert fields["action"] == ["send_test_mail"]
    assert fields["post"] == ["yes"]
    assert "select_across" not in fields
    # Nothing is sent before the operator confirms.
    assert not MailLog.objects.exists()
    assert mail.outbox == []


def test_cancel_link_goes_back_to_the_filtered_changelist_and_changes_nothing(
    operator_client, recipients_users
) -> None:
    query = "is_staff__exact=0"
    page = choose_action(operator_client, ids_of(recipients_users), query=query)

    cancel_url = changelist_url(query)
    assert f'<a href="{cancel_url.replace("&", "&amp;")}" class="closelink cancel-link">' in (
        page.content.decode()
    )
    assert operator_client.get(cancel_url).status_code == 200
    assert not MailLog.objects.exists()


def test_many_users_without_address_are_listed_up_to_a_limit_then_counted(
    operator_client, make_user
) -> None:
    users = [make_user(f"noaddr{i:02d}") for i in range(MAX_LISTED_WITHOUT_ADDRESS + 5)]

    page = choose_action(operator_client, ids_of(users))

    assert len(page.context["without_address"]) == MAX_LISTED_WITHOUT_ADDRESS
    assert "and 5 more" in page.content.decode()
    assert page.context["with_address"] == 0


def test_confirmation_page_costs_the_same_queries_for_3_or_60_users(
    operator_client, make_user
) -> None:
    def queries_for(prefix: str, n: int) -> int:
        users = [make_user(f"{prefix}{i}", f"{prefix}{i}@example.com") for i in range(n)]
        with CaptureQueriesContext(connection) as queries:
            choose_action(operator_client, ids_of(users))
        return len(queries)

    assert queries_for("few", 3) == queries_for("many", 60)


# --- sending ------------------------------------------------------------------------


def test_confirming_sends_through_smtp_logs_each_user_and_links_the_batch(
    settings, smtp_server, operator, operator_client, recipients_users
) -> None:
    use_smtp(settings, smtp_server.options())
    page = choose_action(operator_client, ids_of(recipients_users))

    response = confirm(operator_client, page)

    assert response.status_code == 200
    assert response.redirect_chain == [(changelist_url(), 302)]
    received = sorted(m.rcpt_tos[0] for m in smtp_server.wait_for_messages(3))
    assert received == ["alice@example.com", "bob@example.com", "carol@example.com"]

    rows = MailLog.objects.order_by("recipient")
    assert {row.trigger for row in rows} == {MailTrigger.ADMIN_ACTION}
    assert {row.triggered_by_id for row in rows} == {operator.pk}
    assert len({row.batch_id for row in rows}) == 1
    sent = rows.filter(status=MailStatus.SENT)
    assert sorted(sent.values_list("user__username", flat=True)) == ["alice", "bob", "carol"]
    rejected = rows.get(status=MailStatus.REJECTED)
    assert rejected.user == recipients_users[3]
    assert rejected.error == "user 'nomail' has no email address"

    batch = rows[0].batch_id
    link = f"{reverse('admin:mailops_maillog_changelist')}?batch_id={batch}"
    [(level, text)] = shown_messages(response)
    assert level == "warning"  # one user was rejected
    assert text.startswith(
        "Test mail via default: 3 sent, 0 failed, 1 rejected (no email address)."
    )
    assert f'<a href="{link}">' in text
    assert operator_client.get(link).status_code == 200


def test_all_sent_is_reported_as_success(
    settings, smtp_server, operator_client, recipients_users
) -> None:
    use_smtp(settings, smtp_server.options())
    page = choose_action(operator_client, ids_of(recipients_users[:2]))

    response = confirm(operator_client, page)

    [(level, text)] = shown_messages(response)
    assert level == "success"
    assert "2 sent, 0 failed, 0 rejected (no email address)" in text


def test_a_refused_recipient_is_logged_failed_and_the_rest_are_sent(
    settings, smtp_server, operator_client, recipients_users
) -> None:
    use_smtp(settings, smtp_server.options())
    smtp_server.rejected_recipients["bob@example.com"] = "550 5.1.1 No such user"
    page = choose_action(operator_client, ids_of(recipients_users[:3]))

    response = confirm(operator_client, page)

    [(level, text)] = shown_messages(response)
    assert level == "warning"
    assert "2 sent, 1 failed, 0 rejected" in text
    failed = MailLog.objects.get(status=MailStatus.FAILED)
    assert (failed.recipient, failed.smtp_code) == ("bob@example.com", 550)


def test_mailer_down_logs_failed_rows_and_reports_an_error_not_a_500(
    settings, closed_port, operator_client, recipients_users
) -> None:
    use_smtp(settings, {"host": "127.0.0.1", "port": closed_port, "timeout": 5})
    page = choose_action(operator_client, ids_of(recipients_users[:2]))

    response = confirm(operator_client, page)

    assert response.status_code == 200
    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert "0 sent, 2 failed, 0 rejected" in text
    failed = MailLog.objects.filter(status=MailStatus.FAILED)
    assert failed.count() == 2
    assert all(row.error for row in failed)


def test_chosen_mailer_and_edited_text_are_what_is_sent(operator_client, recipients_users) -> None:
    page = choose_action(operator_client, ids_of(recipients_users[:1]))

    confirm(
        operator_client,
        page,
        mailer="outbox",
        subject="Hello from ops",
        body="Edited body.\r\nSecond line.",
    )

    [message] = mail.outbox
    assert (message.subject, message.to) == ("Hello from ops", ["alice@example.com"])
    assert message.body == "Edited body.\r\nSecond line."
    row = MailLog.objects.get()
    assert (row.mailer, row.subject) == ("outbox", "Hello from ops")


def test_untouched_default_text_follows_the_chosen_mailer(
    operator_client, recipients_users
) -> None:
    page = choose_action(operator_client, ids_of(recipients_users[:1]))

    confirm(operator_client, page, mailer="outbox")

    [message] = mail.outbox
    assert message.subject == default_subject("outbox")
    assert "Mailer: outbox" in message.body


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"subject": "Line one\nLine two"}, "subject", "The subject must be a single line."),
        ({"subject": ""}, "subject", "This field is required."),
        ({"body": "   "}, "body", "The message must not be empty."),
        (
            {"mailer": "nosuchmailer"},
            "mailer",
            "Select a valid choice. nosuchmailer is not one of the available choices.",
        ),
    ],
)
def test_bad_input_is_a_form_error_on_the_confirmation_page(
    operator_client, recipients_users, changes, field, error
) -> None:
    page = choose_action(operator_client, ids_of(recipients_users))

    response = confirm(operator_client, page, **changes)

    assert response.status_code == 200
    assert response.redirect_chain == []
    assert response.context["form"].errors[field] == [error]
    assert "Please correct the errors below." in response.content.decode()
    # The page can be submitted again: the selection is still on it.
    fields = form_fields(response.content.decode(), CONFIRM_FORM)
    assert sorted(fields["_selected_action"]) == sorted(ids_of(recipients_users))
    assert not MailLog.objects.exists()
    assert mail.outbox == []


def test_mailer_broken_since_the_page_was_shown_is_an_error_message(
    settings, operator_client, recipients_users
) -> None:
    page = choose_action(operator_client, ids_of(recipients_users[:1]))
    settings.MAILERS = {
        "default": {"BACKEND": "no.such.Backend"},
        "outbox": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    }

    response = confirm(operator_client, page)

    assert response.status_code == 200
    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert text.startswith("Nothing was sent: MAILERS['default']: Could not find BACKEND")
    assert not MailLog.objects.exists()


def test_select_all_across_pages_sends_to_every_user_matching_the_filter(
    operator, operator_client, make_user
) -> None:
    recipients = [make_user(f"user{i}", f"user{i}@example.com") for i in range(5)]
    query = "is_staff__exact=0"  # the operator is staff and must not get mail
    first_page_ids = ids_of(recipients[:1])

    page = choose_action(operator_client, first_page_ids, query=query, select_across="1")

    assert page.context["total"] == 5
    assert "(All 5 matching the current filters.)" in page.content.decode()
    fields = form_fields(page.content.decode(), CONFIRM_FORM)
    assert fields["select_across"] == ["1"]
    assert fields["_selected_action"] == first_page_ids

    confirm(operator_client, page, query=query, mailer="outbox")

    assert sorted(m.to[0] for m in mail.outbox) == [f"user{i}@example.com" for i in range(5)]
    assert not MailLog.objects.filter(user=operator).exists()


def test_batch_link_is_left_out_for_operators_who_cannot_read_the_log(
    client, make_user, recipients_users
) -> None:
    sender = make_user("sender", perms=("auth.view_user", "mailops.send_test_mail"), is_staff=True)
    client.force_login(sender)
    page = choose_action(client, ids_of(recipients_users[:1]))

    response = confirm(client, page)

    [(_level, text)] = shown_messages(response)
    batch = MailLog.objects.get().batch_id
    assert "<a " not in text
    assert text.endswith(f"Batch {batch}.")
    # The message names the batch every new row belongs to.
    assert set(MailLog.objects.values_list("batch_id", flat=True)) == {batch}


def test_confirmation_page_warns_when_a_big_batch_will_block_the_request(
    settings, operator_client, recipients_users
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "ASYNC_THRESHOLD": 2}

    page = choose_action(operator_client, ids_of(recipients_users))

    assert (
        "3 messages will be sent before this returns: no task worker is configured"
        in page.content.decode()
    )


def test_a_batch_handed_to_a_task_worker_is_reported_as_queued(
    settings, operator_client, recipients_users
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    settings.MAILOPS = {**settings.MAILOPS, "ASYNC_THRESHOLD": 2}
    page = choose_action(operator_client, ids_of(recipients_users[:3]))
    assert "3 messages will be queued and sent by the task worker" in page.content.decode()

    response = confirm(operator_client, page)

    [(level, text)] = shown_messages(response)
    assert level == "success"
    assert "0 sent, 0 failed, 0 rejected (no email address), 3 queued for the task worker" in text
    assert MailLog.objects.filter(status=MailStatus.QUEUED).count() == 3
    assert mail.outbox == []


def test_an_unreachable_task_worker_is_a_warning_and_the_rows_stay_queued(
    settings, operator_client, recipients_users
) -> None:
    settings.TASKS = unreachable_broker.TASKS
    settings.MAILOPS = {**settings.MAILOPS, "ASYNC_THRESHOLD": 2}
    page = choose_action(operator_client, ids_of(recipients_users[:3]))

    response = confirm(operator_client, page)

    assert response.status_code == 200
    [(level, text)] = shown_messages(response)
    assert level == "warning"
    assert "3 queued for the task worker" in text
    assert (
        f"The task worker could not be reached (ConnectionError: {unreachable_broker.REFUSAL})"
        in text
    )
    assert "stay queued until `manage.py mailops_deliver` runs" in text
    assert MailLog.objects.filter(status=MailStatus.QUEUED).count() == 3
