"""Throughput of mailops against Django's bare send loop and django-post-office.

Usage (from the repository root)::

    .venv/bin/python bench/throughput.py              # N=10,000, SQLite in a temp dir
    .venv/bin/python bench/throughput.py --n 2000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailops_bench \
        .venv/bin/python bench/throughput.py

With ``DATABASE_URL`` give an empty scratch database: the run creates its tables
and 100,000 users there. A local SMTP sink on loopback (aiosmtpd, no TLS, no AUTH) accepts and
discards every message. In one run it measures, on the same sink and
database:

* baseline: ``mailers["sink"].send_messages(messages)`` on one connection, no logging;
* mailops: ``send_test_mail`` inline, one MailLog row per message (rows,
  delivery over one connection, outcome written back);
* django-post-office: ``mail.send_many`` + ``mail.send_queued`` (if it runs);
* "select all": queueing a 100,000-user selection for the worker
  (``send_test_mail_to_users`` with a queue backend) -- the admin's answer time;
* peak memory (max RSS) of a child process sending 100,000 messages with mailops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Sink:
    """aiosmtpd handler that accepts and discards; counts what it accepted."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink() -> tuple[Any, Sink, int]:
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, server_hostname="sink.localhost")
    controller.start()
    return controller, sink, port


def setup_django(port: int, db_dir: str, *, with_post_office: bool) -> None:
    import dj_database_url
    import django
    from django.conf import settings

    url = os.environ.get("DATABASE_URL", f"sqlite:///{db_dir}/bench.sqlite3")
    apps = [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "mailops",
    ]
    if with_post_office:
        apps.append("post_office")
    smtp = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 30},
    }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",  # noqa: S106 - a throwaway benchmark process
        INSTALLED_APPS=apps,
        DATABASES={"default": dj_database_url.parse(url)},
        USE_TZ=True,
        # post-office renders its messages through Django templates.
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        MAILERS={"default": smtp, "sink": smtp},
        DEFAULT_FROM_EMAIL="bench@example.com",
        MAILOPS={"ASYNC_THRESHOLD": 10**9, "DEFAULT_MAILER": "sink"},
        POST_OFFICE={"BATCH_SIZE": 1000, "LOG_LEVEL": 0, "MESSAGE_ID_ENABLED": True},
        TASKS={
            "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
            "queue": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"},
        },
        LOGGING={
            "version": 1,
            "loggers": {"mailops": {"level": "ERROR"}, "post_office": {"level": "WARNING"}},
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, run_syncdb=True)


def addresses(n: int, tag: str) -> list[str]:
    return [f"{tag}{i}@example.com" for i in range(n)]


def bench_baseline(n: int) -> float:
    from django.core.mail import mailers

    from mailops.composition import build_message, new_message_id

    start = time.perf_counter()
    messages = [
        build_message(
            to=address,
            subject="Benchmark",
            body="Benchmark body",
            from_email="bench@example.com",
            message_id=new_message_id("example.com"),
            mailer="sink",
        )
        for address in addresses(n, "base")
    ]
    sent = mailers["sink"].send_messages(messages)
    elapsed = time.perf_counter() - start
    assert sent == n, sent
    return elapsed


def bench_mailops(n: int) -> float:
    from mailops.models import MailTrigger
    from mailops.recipients import from_addresses
    from mailops.services import send_test_mail

    start = time.perf_counter()
    summary = send_test_mail(
        from_addresses(addresses(n, "ops")),
        using="sink",
        trigger=MailTrigger.API,
        subject="Benchmark",
        body="Benchmark body",
    )
    elapsed = time.perf_counter() - start
    assert summary.sent == n, summary.counts
    return elapsed


def bench_post_office(n: int) -> float:
    from post_office import mail
    from post_office.models import Email

    start = time.perf_counter()
    mail.send_many(
        [
            {
                "sender": "bench@example.com",
                "recipients": [address],
                "subject": "Benchmark",
                "message": "Benchmark body",
            }
            for address in addresses(n, "po")
        ]
    )
    # send_queued() takes one BATCH_SIZE of emails per call.
    while sum(mail.send_queued()):
        pass
    elapsed = time.perf_counter() - start
    sent = Email.objects.filter(status=0).count()  # STATUS.sent == 0
    if sent != n:
        raise RuntimeError(f"post-office sent {sent} of {n}")
    return elapsed


def bench_select_all(users: int) -> tuple[float, int]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mailops.models import MailTrigger
    from mailops.services import send_test_mail_to_users

    model = get_user_model()
    model.objects.bulk_create(
        (model(username=f"bench{i}", email=f"bench{i}@example.com") for i in range(users)),
        batch_size=5000,
    )
    from django.conf import settings

    settings.MAILOPS = {**settings.MAILOPS, "ASYNC_THRESHOLD": 50, "TASK_BACKEND": "queue"}
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        summary = send_test_mail_to_users(
            model.objects.all(), using="sink", trigger=MailTrigger.ADMIN_ACTION
        )
        elapsed = time.perf_counter() - start
    assert summary.handed_to_worker, summary.counts
    assert summary.queued == users, summary.counts
    return elapsed, len(queries)


def memory_child(n: int) -> None:
    """Child process: send ``n`` with mailops, print the peak RSS in MB as JSON."""
    controller, _sink, port = start_sink()
    with tempfile.TemporaryDirectory() as db_dir:
        setup_django(port, db_dir, with_post_office=False)
        os.environ.pop("DATABASE_URL", None)
        elapsed = bench_mailops(n)
    controller.stop()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "seconds": elapsed, "peak_mb": peak_kb / 1024}))


BASELINE = "baseline (send_messages, no log)"
MAILOPS = "mailops (send_test_mail, 1 row/msg)"
POST_OFFICE = "django-post-office (send_many+send_queued)"


def report_rates(n: int, results: dict[str, float]) -> None:
    """Messages per second, the ratio to the baseline and to post-office, the targets."""
    base = results[BASELINE]
    post_office = results.get(POST_OFFICE)
    print(f"  {'path':<45} {'msg/s':>9}        {'time':>7}    vs base  vs post-office")
    for name, seconds in results.items():
        rate = n / seconds
        vs_po = f"{post_office / seconds:5.2f}x" if post_office else "    -"
        print(
            f"  {name:<45} {rate:>9,.0f} msg/s  {seconds:7.2f} s  "
            f"{base / seconds:6.2f}x  {vs_po:>13}"
        )
    mailops = results[MAILOPS]
    verdict = f"Targets: mailops >= 1.0x baseline: {base / mailops:.2f}x " + (
        "(met)" if base / mailops >= 1.0 else "(NOT met)"
    )
    if post_office:
        ratio = post_office / mailops
        verdict += f"; >= 2x post-office: {ratio:.2f}x " + ("(met)" if ratio >= 2 else "(NOT met)")
    print(verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="messages per contender")
    parser.add_argument("--select-all", type=int, default=100_000, help="users to queue")
    parser.add_argument("--memory-n", type=int, default=100_000, help="messages for peak RSS")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    controller, sink, port = start_sink()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as db_dir:
        post_office_error = ""
        setup_django(port, db_dir, with_post_office=True)
        print(
            f"N = {args.n} messages, SMTP sink on 127.0.0.1:{port}, database: "
            f"{os.environ.get('DATABASE_URL', 'SQLite (temp file)').split('@')[-1]}"
        )
        results[BASELINE] = bench_baseline(args.n)
        results[MAILOPS] = bench_mailops(args.n)
        try:
            results[POST_OFFICE] = bench_post_office(args.n)
        except Exception as error:  # noqa: BLE001 - report why, measure the rest
            post_office_error = f"{type(error).__name__}: {error}"
        report_rates(args.n, results)
        if post_office_error:
            print(f"  django-post-office could not run: {post_office_error}")
        if args.select_all:
            seconds, queries = bench_select_all(args.select_all)
            print(
                f"Select all: queueing {args.select_all:,} users for the worker took "
                f"{seconds:.3f} s in {queries} queries"
            )
    controller.stop()
    print(f"Sink accepted {sink.count:,} messages.")

    if args.memory_n:
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(args.memory_n)],
            capture_output=True,
            text=True,
            check=True,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"Peak memory, mailops sending {result['n']:,} messages (child process, "
            f"SQLite): {result['peak_mb']:.0f} MB max RSS "
            f"({result['n'] / result['seconds']:,.0f} msg/s)"
        )


if __name__ == "__main__":
    main()
