"""The suppression list in the admin; suppressed users on the send and resend confirmations."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailops.models import MailLog, MailStatus, Suppression
from mailops.suppression import suppress_address
from mailops.suppression.models import SuppressionReason
from tests.admin_fixtures import form_fields, shown_messages
from tests.test_admin_send_action import CONFIRM_FORM, OPERATOR_PERMS, choose_action, ids_of

pytestmark = pytest.mark.django_db

User = get_user_model()
LIST = "admin:mailops_suppression_changelist"
MANAGER_PERMS = ("mailops.manage_suppression",)


@pytest.fixture
def entries() -> list[Suppression]:
    return [
        suppress_address(
            "dead@example.com", reason=SuppressionReason.HARD_BOUNCE, detail="5.1.1 no such user"
        ),
        suppress_address("angry@example.org", reason=SuppressionReason.COMPLAINT),
        suppress_address("=cmd@example.net", reason=SuppressionReason.MANUAL),
    ]


def staff_client(client: Any, make_user: Any, perms: tuple[str, ...]) -> Any:
    client.force_login(make_user("staff", "staff@example.com", perms=perms, is_staff=True))
    return client


def shown(response: Any) -> list[str]:
    return [entry.address for entry in response.context["cl"].result_list]


def test_the_list_searches_by_address_prefix_and_filters_by_reason(
    client: Any, make_user: Any, entries: list[Suppression]
) -> None:
    client = staff_client(client, make_user, ("mailops.view_suppression",))

    assert sorted(shown(client.get(reverse(LIST)))) == sorted(e.address for e in entries)
    assert shown(client.get(reverse(LIST), {"q": "DEAD@"})) == ["dead@example.com"]
    assert shown(client.get(reverse(LIST), {"reason": "complaint"})) == ["angry@example.org"]


def test_viewers_cannot_add_remove_or_import(
    client: Any, make_user: Any, entries: list[Suppression]
) -> None:
    client = staff_client(client, make_user, ("mailops.view_suppression",))
    page = client.get(reverse(LIST))
    assert "unsuppress_selected" not in page.content.decode()
    assert client.get(reverse("admin:mailops_suppression_add")).status_code == 403
    assert client.get(reverse("admin:mailops_suppression_import")).status_code == 403
    response = client.post(
        reverse(LIST),
        {"action": "unsuppress_selected", "_selected_action": [entries[0].pk], "post": "yes"},
    )
    assert response.status_code in (200, 302, 403)
    assert Suppression.objects.count() == 3


def test_without_any_permission_the_list_is_refused(client: Any, make_user: Any) -> None:
    client = staff_client(client, make_user, ())
    assert client.get(reverse(LIST)).status_code == 403


def test_removing_asks_first_then_removes(
    client: Any, make_user: Any, entries: list[Suppression]
) -> None:
    client = staff_client(client, make_user, MANAGER_PERMS)
    data = {"action": "unsuppress_selected", "_selected_action": [entries[0].pk, entries[1].pk]}

    page = client.post(reverse(LIST), data)

    assert page.status_code == 200
    text = page.content.decode()
    assert "2 addresses will be removed from the suppression list" in text
    assert "dead@example.com" in text
    assert "5.1.1 no such user" in text
    assert Suppression.objects.count() == 3

    done = client.post(reverse(LIST), {**data, "post": "yes"}, follow=True)

    assert list(Suppression.objects.values_list("address", flat=True)) == ["=cmd@example.net"]
    assert (
        "success",
        "2 addresses removed from the suppression list; mail goes to them again.",
    ) in (shown_messages(done))


def test_adding_by_hand_normalises_and_records_who(client: Any, make_user: Any) -> None:
    client = staff_client(client, make_user, MANAGER_PERMS)
    response = client.post(
        reverse("admin:mailops_suppression_add"),
        {"address": " Someone@Example.COM ", "reason": "manual", "detail": "asked by phone"},
    )
    assert response.status_code == 302
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason, entry.added_by.username) == (
        "someone@example.com",
        "manual",
        "staff",
    )


def test_export_is_spreadsheet_safe(
    client: Any, make_user: Any, entries: list[Suppression]
) -> None:
    client = staff_client(client, make_user, ("mailops.view_suppression",))
    response = client.post(
        reverse("admin:mailops_suppression_export"),
        {
            "format": "0",
            **{f"suppressionresource_{c}": "on" for c in ("address", "reason", "detail")},
        },
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "'=cmd@example.net" in text
    assert "dead@example.com,hard_bounce,5.1.1 no such user" in text


def _import(client: Any, content: str) -> Any:
    upload = SimpleUploadedFile("list.csv", content.encode(), content_type="text/csv")
    page = client.post(
        reverse("admin:mailops_suppression_import"),
        {"format": "0", "import_file": upload, "resource": "0"},
    )
    return page


def test_import_adds_and_updates_entries_by_normalised_address(
    client: Any, make_user: Any, entries: list[Suppression]
) -> None:
    client = staff_client(client, make_user, MANAGER_PERMS)
    page = _import(
        client,
        "address,reason,detail\nDEAD@example.com,complaint,from the old system\n"
        "new@example.com,,\n",
    )
    assert page.status_code == 200
    confirm = page.context["confirm_form"]
    assert confirm is not None, page.content.decode()[:2000]
    data = {name: confirm[name].value() for name in confirm.fields}
    client.post(reverse("admin:mailops_suppression_process_import"), data, follow=True)

    dead = Suppression.objects.get(address="dead@example.com")
    assert (dead.reason, dead.detail) == ("complaint", "from the old system")
    new = Suppression.objects.get(address="new@example.com")
    assert (new.reason, new.added_by.username) == ("manual", "staff")


def test_import_refuses_an_unknown_reason_and_imports_nothing(client: Any, make_user: Any) -> None:
    client = staff_client(client, make_user, MANAGER_PERMS)
    page = _import(client, "address,reason\nok@example.com,manual\nx@example.com,spam\n")
    assert "Unknown reason" in page.content.decode()
    page = _import(client, "address,reason\nok@example.com,manual\nnot an address,manual\n")
    assert "not a valid email address" in page.content.decode()
    assert not Suppression.objects.exists()


# --- the send action's confirmation page ------------------------------------------


@pytest.fixture
def selection(make_user: Any) -> list[Any]:
    suppress_address("Bob@Example.com", reason=SuppressionReason.HARD_BOUNCE, detail="5.1.1 gone")
    return [make_user("alice", "alice@example.com"), make_user("bob", "bob@example.com")]


def test_the_confirmation_page_counts_and_names_suppressed_users(
    client: Any, make_user: Any, selection: list[Any]
) -> None:
    client = staff_client(client, make_user, OPERATOR_PERMS)

    page = choose_action(client, ids_of(selection))

    text = page.content.decode()
    assert "<strong>1</strong> selected user will get a test mail." in text
    assert "Rejected: on the suppression list" in text
    assert "bob@example.com" in text
    assert "5.1.1 gone" in text
    # Only who manages the list may send past it.
    assert "ignore_suppression" not in form_fields(text, CONFIRM_FORM)


def test_sending_rejects_the_suppressed_user(
    client: Any, make_user: Any, selection: list[Any]
) -> None:
    client = staff_client(client, make_user, OPERATOR_PERMS)
    page = choose_action(client, ids_of(selection))
    fields = form_fields(page.content.decode(), CONFIRM_FORM)
    # A forged checkbox from someone without the permission changes nothing.
    fields["ignore_suppression"] = ["on"]

    done = client.post(reverse("admin:auth_user_changelist"), fields, follow=True)

    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    bob = MailLog.objects.get(recipient="bob@example.com")
    assert bob.status == MailStatus.REJECTED
    assert "5.1.1 gone" in bob.error
    assert any("1 suppressed (not sent)" in text for _, text in shown_messages(done))


def test_a_manager_may_tick_send_to_suppressed_addresses_too(
    client: Any, make_user: Any, selection: list[Any]
) -> None:
    client = staff_client(client, make_user, OPERATOR_PERMS + MANAGER_PERMS)
    page = choose_action(client, ids_of(selection))
    fields = form_fields(page.content.decode(), CONFIRM_FORM)
    fields["ignore_suppression"] = ["on"]

    client.post(reverse("admin:auth_user_changelist"), fields, follow=True)

    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.com", "bob@example.com"]


# --- resend ------------------------------------------------------------------------


def test_resend_says_before_and_after_which_rows_go_to_suppressed_addresses(
    client: Any, make_user: Any
) -> None:
    from tests.maillog_fixtures import make_log

    client = staff_client(
        client,
        make_user,
        ("mailops.view_maillog", "mailops.change_maillog", "mailops.send_test_mail"),
    )
    suppress_address("dead@example.com", reason=SuppressionReason.HARD_BOUNCE, detail="5.1.1 gone")
    logs = [
        make_log(status=MailStatus.FAILED, recipient="dead@example.com"),
        make_log(status=MailStatus.FAILED, recipient="ok@example.com"),
    ]
    url = reverse("admin:mailops_maillog_changelist")
    data = {"action": "resend", "_selected_action": [log.pk for log in logs]}

    page = client.post(url, data).content.decode()

    assert "1 of them goes to an address on the suppression list" in page

    done = client.post(url, {**data, "post": "yes"}, follow=True)

    assert [m.to for m in mail.outbox] == [["ok@example.com"]]
    texts = [text for _, text in shown_messages(done)]
    assert any(
        "1 message was not resent: its address is on the suppression list" in t for t in texts
    )
    new = MailLog.objects.get(recipient="dead@example.com", status=MailStatus.REJECTED)
    assert new.error.endswith(": 5.1.1 gone")


def test_import_of_a_semicolon_file_says_how_the_first_line_should_read(
    client: Any, make_user: Any
) -> None:
    client = staff_client(client, make_user, MANAGER_PERMS)
    page = _import(client, "address;reason\ndead@example.com;manual\n")
    text = page.content.decode()
    assert "separated by semicolons" in text
    assert "address,reason,detail,..." in text
    assert not Suppression.objects.exists()
