"""`manage.py sendtestmail` against a real SMTP server on loopback."""

from __future__ import annotations

import json
import os
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from mailops.models import MailLog, MailStatus, MailTrigger
from tests import unreachable_broker
from tests.commands import all_columns
from tests.commands import run_sendtestmail as run
from tests.worker_processes import manage

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

pytestmark = pytest.mark.django_db


def use_server(settings: Any, server: Any, alias: str = "default", **overrides: Any) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        alias: {"BACKEND": SMTP_BACKEND, "OPTIONS": server.options(**overrides)},
    }


def test_sends_over_starttls_with_auth_and_logs_the_message_id(settings, smtp_server) -> None:
    use_server(settings, smtp_server)

    code, out, _ = run("alice@example.com", "bob@example.com")

    assert code == 0
    received = smtp_server.wait_for_messages(2)
    logs = list(MailLog.objects.order_by("recipient"))
    assert [(log.recipient, log.status) for log in logs] == [
        ("alice@example.com", MailStatus.SENT),
        ("bob@example.com", MailStatus.SENT),
    ]
    assert {m.message_id for m in received} == {log.message_id for log in logs}
    assert all(log.trigger == MailTrigger.COMMAND and log.sent_at for log in logs)
    assert logs[0].batch_id == logs[1].batch_id
    assert logs[0].backend == SMTP_BACKEND
    assert smtp_server.connections == 1, "the batch must reuse one connection"
    assert "sent      alice@example.com" in out
    assert "2 sent, 0 failed, 0 rejected via mailer 'default'" in out


def test_message_says_which_site_mailer_and_time_it_came_from(settings, smtp_server) -> None:
    use_server(settings, smtp_server, alias="relay")
    settings.MAILOPS = {"FROM_EMAILS": {"relay": "ops@example.com"}}

    assert run("alice@example.com", "--using", "relay")[0] == 0

    message = smtp_server.wait_for_messages(1)[0].message
    body = message.get_content()
    assert "Mailer: relay" in body
    assert "Site: " in body
    assert "Sent: " in body
    assert message["From"] == "ops@example.com"
    assert "via relay" in message["Subject"]


def test_implicit_tls_works(settings, smtps_server) -> None:
    use_server(settings, smtps_server)

    assert run("alice@example.com")[0] == 0

    assert len(smtps_server.wait_for_messages(1)) == 1
    assert MailLog.objects.get().status == MailStatus.SENT


def test_wrong_password_fails_with_535_and_never_shows_the_password(
    settings, smtp_server, caplog
) -> None:
    wrong = "not-the-right-app-password"
    use_server(settings, smtp_server, password=wrong)
    smtp_server.echo_credentials_on_auth_failure = True

    code, out, err = run("alice@example.com")

    assert code == 1
    log = MailLog.objects.get()
    assert log.status == MailStatus.FAILED
    assert log.smtp_code == 535
    assert "authentication failed" in log.error
    assert "App Password" in log.error  # the hint
    assert wrong not in all_columns(log)
    assert wrong not in out + err
    assert "[default] authentication failed" in caplog.text
    assert wrong not in caplog.text
    assert smtp_server.messages == []


def test_server_not_listening_fails_every_row_with_the_reason(settings, smtp_server) -> None:
    use_server(settings, smtp_server, port=smtp_server.port)
    smtp_server.stop()

    code, out, err = run("alice@example.com", "bob@example.com")

    assert code == 1
    logs = MailLog.objects.all()
    assert {log.status for log in logs} == {MailStatus.FAILED}
    assert all("connection refused" in log.error for log in logs)
    assert "0 sent, 2 failed" in out
    assert "2 messages failed" in err


def test_one_refused_recipient_fails_alone(settings, smtp_server) -> None:
    use_server(settings, smtp_server)
    smtp_server.rejected_recipients["bob@example.com"] = "550 5.1.1 <bob@example.com> No such user"
    smtp_server.data_replies["carol@example.com"] = "451 4.3.0 Try again later"

    code, out, _ = run(
        "alice@example.com", "bob@example.com", "carol@example.com", "dan@example.com"
    )

    assert code == 1
    statuses = dict(MailLog.objects.values_list("recipient", "status"))
    assert statuses == {
        "alice@example.com": MailStatus.SENT,
        "bob@example.com": MailStatus.FAILED,
        "carol@example.com": MailStatus.FAILED,
        "dan@example.com": MailStatus.SENT,
    }
    bob = MailLog.objects.get(recipient="bob@example.com")
    carol = MailLog.objects.get(recipient="carol@example.com")
    assert (bob.smtp_code, carol.smtp_code) == (550, 451)
    assert "No such user" in bob.error
    assert {m.rcpt_tos[0] for m in smtp_server.messages} == {"alice@example.com", "dan@example.com"}
    assert "failed    bob@example.com: [default] recipient refused" in out


def test_dropped_connection_reconnects_for_the_rest(settings, smtp_server) -> None:
    use_server(settings, smtp_server)
    smtp_server.drop_connection_for.add("bob@example.com")

    code, _, _ = run("alice@example.com", "bob@example.com", "carol@example.com")

    assert code == 1
    statuses = dict(MailLog.objects.values_list("recipient", "status"))
    assert statuses["bob@example.com"] == MailStatus.FAILED
    assert statuses["alice@example.com"] == statuses["carol@example.com"] == MailStatus.SENT
    assert smtp_server.connections == 2


def test_421_closes_the_connection_and_the_rest_still_go_out(settings, smtp_server) -> None:
    use_server(settings, smtp_server)
    smtp_server.rejected_recipients["bob@example.com"] = "421 4.7.0 Too many connections"

    run("alice@example.com", "bob@example.com", "carol@example.com")

    bob = MailLog.objects.get(recipient="bob@example.com")
    assert (bob.status, bob.smtp_code) == (MailStatus.FAILED, 421)
    assert MailLog.objects.get(recipient="carol@example.com").status == MailStatus.SENT


def test_invalid_addresses_are_all_reported_and_nothing_is_sent(settings, smtp_server) -> None:
    use_server(settings, smtp_server)

    code, out, err = run(
        "alice@example.com", "not-an-address", "x@y\nBcc: z@z.z", "--user", "ghost"
    )

    assert code == 2
    assert smtp_server.messages == []
    rejected = MailLog.objects.filter(status=MailStatus.REJECTED)
    assert rejected.count() == 3
    assert MailLog.objects.exclude(status=MailStatus.REJECTED).count() == 0
    assert "rejected  not-an-address: not a valid email address" in out
    assert "rejected  ghost: no user 'ghost'" in out
    assert "nothing was sent" in err


def test_unknown_alias_is_a_usage_error_listing_configured_ones(settings) -> None:
    code, _, err = run("alice@example.com", "--using", "nope")

    assert code == 2
    assert err == "Unknown mailer 'nope'. Configured mailers: default, outbox."
    assert MailLog.objects.count() == 0


def test_no_recipient_is_a_usage_error() -> None:
    code, _, err = run()
    assert code == 2
    assert "Name at least one recipient" in err


def test_dry_run_sends_and_logs_nothing(settings, smtp_server) -> None:
    use_server(settings, smtp_server)

    code, out, _ = run("alice@example.com", "bob@example.com", "--dry-run")

    assert code == 0
    assert "would send  alice@example.com" in out
    assert "2 would be sent" in out
    assert MailLog.objects.count() == 0
    assert smtp_server.messages == []
    assert smtp_server.connections == 0


def test_dry_run_still_reports_invalid_entries_with_exit_2() -> None:
    code, out, _ = run("bad", "--dry-run")
    assert code == 2
    assert "rejected  bad" in out
    assert MailLog.objects.count() == 0


def test_json_output_is_machine_readable(settings, smtp_server) -> None:
    use_server(settings, smtp_server)
    smtp_server.rejected_recipients["bob@example.com"] = "550 5.1.1 No such user"

    code, out, _ = run("alice@example.com", "bob@example.com", "--json")

    assert code == 1
    result = json.loads(out)
    assert result["mailer"] == "default"
    assert result["ok"] is False
    assert result["counts"] == {"sent": 1, "failed": 1, "rejected": 0, "suppressed": 0, "queued": 0}
    by_recipient = {m["recipient"]: m for m in result["messages"]}
    assert by_recipient["bob@example.com"]["smtp_code"] == 550
    assert (
        by_recipient["alice@example.com"]["message_id"]
        == MailLog.objects.get(recipient="alice@example.com").message_id
    )


def test_json_with_the_console_mailer_stays_parseable(settings, capsys) -> None:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
    out = StringIO()
    call_command("sendtestmail", "alice@example.com", "--json", stdout=out)
    assert json.loads(out.getvalue())["counts"]["sent"] == 1
    assert "Subject: Test mail" in capsys.readouterr().err


def test_users_and_staff_are_linked_to_their_rows(settings, smtp_server, make_user) -> None:
    use_server(settings, smtp_server)
    alice = make_user("alice", "alice@example.com")
    staff = make_user("ops", "ops@example.com", is_staff=True)
    make_user("former", "former@example.com", is_staff=True, is_active=False)
    make_user("quiet", "", is_staff=True)

    code, _, _ = run("--user", "alice", "--staff")

    assert code == 0
    linked = dict(MailLog.objects.values_list("recipient", "user_id"))
    assert linked == {"alice@example.com": alice.pk, "ops@example.com": staff.pk}


def test_user_lookup_by_email_and_user_without_address(make_user) -> None:
    make_user("alice", "Alice@Example.com")
    make_user("nomail", "")

    code, out, _ = run("--user", "alice@example.com", "--user", "nomail")

    assert code == 2
    assert "rejected  nomail: user 'nomail' has no email address" in out
    row = MailLog.objects.get(status=MailStatus.REJECTED)
    assert row.user.username == "nomail"


def test_staff_with_nobody_to_mail_is_a_usage_error() -> None:
    code, _, err = run("--staff")
    assert code == 2
    assert "no active staff user has an email address" in err


def test_quiet_verbosity_prints_nothing_on_success(settings, smtp_server) -> None:
    use_server(settings, smtp_server)
    code, out, _ = run("alice@example.com", "-v", "0")
    assert (code, out) == (0, "")


def test_subject_and_message_options(settings, smtp_server) -> None:
    use_server(settings, smtp_server)
    run("alice@example.com", "--subject", "Hello ops", "--message", "Body text")
    message = smtp_server.wait_for_messages(1)[0].message
    assert message["Subject"] == "Hello ops"
    assert message.get_content().strip() == "Body text"
    assert MailLog.objects.get().subject == "Hello ops"


def test_multiline_subject_is_a_usage_error() -> None:
    code, _, err = run("alice@example.com", "--subject", "a\nBcc: x@example.com")
    assert code == 2
    assert "single line" in err
    assert MailLog.objects.count() == 0


@pytest.mark.parametrize("command", ["sendtestmail", "mailops_deliver"])
def test_an_unmigrated_database_is_a_clear_error_not_a_traceback(tmp_path, command) -> None:
    # A fresh clone's default SQLite file has no tables until `migrate`.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update({"DEBUG": "1", "MAILOPS_VAR_DIR": str(tmp_path)})
    args = ["someone@example.com"] if command == "sendtestmail" else []
    result = manage(env, command, *args)

    assert result.returncode == 2
    assert "has unapplied migrations" in result.stderr
    assert "run `python manage.py migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_async_with_an_unreachable_worker_exits_1_and_mailops_deliver_sends_later(
    settings, use_tasks
) -> None:
    use_tasks(unreachable_broker.TASKS)

    code, out, err = run("a@example.com", "b@example.com", "--async", "--wait")

    assert code == 1
    assert "0 sent, 0 failed, 0 rejected" in out
    assert "The task worker could not be reached (ConnectionError:" in err
    assert "the 2 messages of batch" in err
    assert MailLog.objects.filter(status=MailStatus.QUEUED).count() == 2

    call_command("mailops_deliver", stdout=StringIO())
    assert MailLog.objects.filter(status=MailStatus.SENT).count() == 2
