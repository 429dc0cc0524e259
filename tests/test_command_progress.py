"""Progress lines on stderr for long runs: sendtestmail (inline and --wait), mailops_deliver."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from mailops.management.commands import sendtestmail
from mailops.management.progress_meter import LINE_INTERVAL, ProgressMeter
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.sending.delivery import deliver_batch
from mailops.sending.progress import BatchProgress
from mailops.services import send_test_mail
from tests.scale_fixtures import use_server

pytestmark = pytest.mark.django_db


class TerminalStream(StringIO):
    """What the command sees as stderr when run in a terminal."""

    def isatty(self) -> bool:
        return True


def run(command: str, *args: str, stderr: StringIO | None = None) -> tuple[int, str, str]:
    """Run a command; return (exit status, stdout, stderr including the error)."""
    out, err = StringIO(), stderr if stderr is not None else StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


def addresses(count: int) -> list[str]:
    return [f"user{i}@example.com" for i in range(count)]


@pytest.fixture
def long_runs(settings: Any) -> None:
    """More than 5 messages is a long run here; outcomes are written every 5."""
    settings.MAILOPS = {**settings.MAILOPS, "ASYNC_THRESHOLD": 5, "DELIVERY_CHUNK_SIZE": 5}


# --- sendtestmail, inline ---------------------------------------------------------------


def test_a_long_inline_send_prints_a_progress_line_per_step(long_runs) -> None:
    code, out, err = run("sendtestmail", *addresses(20))

    assert code == 0
    assert "\r" not in err, "not a terminal: plain lines"
    assert err.splitlines() == [
        "[#####...............] 5/20 sent 5, failed 0",
        "[##########..........] 10/20 sent 10, failed 0",
        "[###############.....] 15/20 sent 15, failed 0",
        "[####################] 20/20 sent 20, failed 0",
    ]
    assert "20 sent, 0 failed, 0 rejected" in out


def test_on_a_terminal_the_line_is_redrawn_in_place(long_runs) -> None:
    terminal = TerminalStream()

    code, _, err = run("sendtestmail", *addresses(20), stderr=terminal)

    assert code == 0
    assert err.startswith("\r[")
    assert err.endswith("\r[####################] 20/20 sent 20, failed 0\n")
    assert err.count("\n") == 1, "one line, redrawn"


def test_failures_show_in_the_progress_line(settings, long_runs, plain_smtp) -> None:
    use_server(settings, plain_smtp)
    plain_smtp.rejected_recipients["user3@example.com"] = "550 5.1.1 No such user"

    code, _, err = run("sendtestmail", *addresses(10))

    assert code == 1
    assert "[####################] 10/10 sent 9, failed 1" in err.splitlines()


def test_a_short_send_prints_no_progress(long_runs) -> None:
    code, _, err = run("sendtestmail", *addresses(5))

    assert (code, err) == (0, "")


@pytest.mark.parametrize("flag", ["--verbosity=0", "--json"])
def test_quiet_and_json_runs_print_no_progress(long_runs, flag) -> None:
    code, out, err = run("sendtestmail", flag, *addresses(20))

    assert code == 0
    assert "[" not in err
    assert MailLog.objects.sent().count() == 20
    if flag == "--json":
        assert '"sent": 20' in out


# --- sendtestmail --async --wait ----------------------------------------------------------


@pytest.fixture
def worker_on_wait(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """While the command waits, a worker delivers the queued batch.

    The command sleeps between looks at the batch; here that sleep is the
    worker's delivery pass (the real worker processes are in test_db_worker).
    """
    passes: list[str] = []

    def worker_runs(_seconds: float) -> None:
        batch_id = MailLog.objects.queued().values_list("batch_id", flat=True).first()
        passes.append(str(batch_id))
        deliver_batch(batch_id, chunk_size=5)

    monkeypatch.setattr(sendtestmail, "sleep", worker_runs)
    return passes


def test_async_wait_follows_the_worker_and_exits_as_an_inline_send(
    settings, long_runs, worker_backend, plain_smtp, worker_on_wait
) -> None:
    use_server(settings, plain_smtp)
    plain_smtp.rejected_recipients["user7@example.com"] = "550 5.1.1 No such user"

    code, out, err = run("sendtestmail", "--async", "--wait", *addresses(10))

    assert len(worker_backend.results) == 1, "handed to the worker"
    assert len(worker_on_wait) == 1, "waited once while the worker sent the batch"
    assert err.splitlines()[:2] == [
        "[....................] 0/10 sent 0, failed 0",
        "[####################] 10/10 sent 9, failed 1",
    ]
    assert code == 1
    assert "1 message failed" in err
    # Outcomes are known now: one line per message, as for an inline send.
    assert "failed    user7@example.com: " in out
    assert "sent      user0@example.com" in out
    assert "9 sent, 1 failed, 0 rejected via mailer 'default'" in out
    assert "queued" not in out.splitlines()[-1]


def test_async_without_wait_returns_at_once(long_runs, worker_backend, worker_on_wait) -> None:
    code, out, err = run("sendtestmail", "--async", *addresses(10))

    assert (code, err, worker_on_wait) == (0, "", [])
    assert "10 queued" in out
    assert MailLog.objects.queued().count() == 10


def test_async_wait_with_json_waits_quietly(
    long_runs, worker_backend, worker_on_wait, plain_smtp, settings
) -> None:
    use_server(settings, plain_smtp)

    code, out, err = run("sendtestmail", "--async", "--wait", "--json", *addresses(10))

    assert code == 0
    assert "[" not in err
    assert '"sent": 10' in out
    assert '"queued": 0' in out


def test_ctrl_c_while_waiting_leaves_the_batch_to_the_worker(
    long_runs, worker_backend, monkeypatch
) -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sendtestmail, "sleep", interrupted)

    code, _, err = run("sendtestmail", "--async", "--wait", *addresses(10))

    batch_id = MailLog.objects.values_list("batch_id", flat=True).first()
    assert code == 130
    assert f"Stopped waiting. The worker goes on with batch {batch_id}" in err
    assert MailLog.objects.queued().count() == 10


def test_wait_is_refused_with_check() -> None:
    code, _, err = run("sendtestmail", "--check", "--wait")

    assert code == 2
    assert "drop --wait" in err


# --- mailops_deliver --wait -------------------------------------------------------------------


def queue(count: int) -> Any:
    return send_test_mail(from_addresses(addresses(count)), trigger=MailTrigger.API, queue=True)


def test_deliver_wait_shows_the_queue_draining(long_runs, worker_backend) -> None:
    queue(10)
    queue(10)

    code, out, err = run("mailops_deliver", "--wait")

    assert code == 0
    lines = err.splitlines()
    assert lines[0] == "[#####...............] 5/20 sent 5, failed 0"
    assert lines[-1] == "[####################] 20/20 sent 20, failed 0"
    assert "20 sent, 0 failed." in out


def test_deliver_wait_for_one_batch_counts_that_batch(long_runs, worker_backend) -> None:
    summary = queue(10)
    queue(10)

    code, _, err = run("mailops_deliver", "--wait", "--batch", str(summary.batch_id))

    assert code == 0
    assert err.splitlines()[-1] == "[####################] 10/10 sent 10, failed 0"
    assert MailLog.objects.queued().count() == 10, "the other batch is left alone"


def test_deliver_without_wait_prints_no_progress(long_runs, worker_backend) -> None:
    queue(10)

    code, out, err = run("mailops_deliver")

    assert (code, err) == (0, "")
    assert "10 sent, 0 failed." in out


# --- the meter's pace ---------------------------------------------------------------------------


def at(done: int, total: int = 100) -> BatchProgress:
    return BatchProgress(
        batch_id=None, counts={MailStatus.SENT: done, MailStatus.QUEUED: total - done}
    )


def test_off_a_terminal_a_line_per_ten_percent_or_per_interval() -> None:
    written: list[str] = []
    now = [0.0]
    meter = ProgressMeter(written.append, tty=False, clock=lambda: now[0])

    for done in (1, 2, 9, 10, 11, 25):
        meter.show(at(done))
    now[0] += LINE_INTERVAL
    meter.show(at(26))
    meter.finish(at(100))

    assert [line.split("] ")[1] for line in written] == [
        "1/100 sent 1, failed 0\n",
        "10/100 sent 10, failed 0\n",
        "25/100 sent 25, failed 0\n",
        "26/100 sent 26, failed 0\n",
        "100/100 sent 100, failed 0\n",
    ]


def test_on_a_terminal_a_shorter_line_covers_the_longer_one() -> None:
    written: list[str] = []
    meter = ProgressMeter(written.append, tty=True, clock=lambda: 0.0)
    waiting = BatchProgress(
        batch_id=None, counts={MailStatus.SENT: 1, MailStatus.QUEUED: 1}, waiting=1
    )

    meter.show(waiting)
    meter.finish(at(2, total=2))

    assert written[0] == "\r[##########..........] 1/2 sent 1, failed 0, waiting 1"
    assert written[1].rstrip() == "\r[####################] 2/2 sent 2, failed 0"
    assert len(written[1]) == len(written[0])
    assert written[2] == "\n"
