"""What checking the suppression list costs: a "select all" send, and one site mail.

Usage (from the repository root; give an empty scratch database)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailops_bench_suppression \\
        .venv/bin/python bench/suppression.py             # 100,000 users
    .venv/bin/python bench/suppression.py --users 20000   # SQLite in a temp dir

1. The admin action's request path for a whole user selection
   (``send_test_mail_to_users``, a worker configured, so the request writes
   the rejected rows and records the ids), with a suppression list of
   ``--entries`` addresses of which 1% of the selected users are on it,
   against the same call with ``ignore_suppression=True`` in the same run.
2. ``send_mail`` of site mail (audited, ``locmem``) to two recipients with
   ``SUPPRESS_SITE_MAIL`` on, against the same with it off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from select_all import empty_log, make_users, setup_django  # noqa: E402


def fill_list(entries: int, users: int) -> None:
    from mailops.models import Suppression

    Suppression.objects.all().delete()
    # 1% of the users, the rest addresses nobody here has.
    on_list = [f"bench{i}@example.com" for i in range(0, users, 100)]
    others = [f"gone{i}@example.org" for i in range(max(0, entries - len(on_list)))]
    Suppression.objects.bulk_create(
        (Suppression(address=a, reason="hard_bounce") for a in on_list + others), batch_size=5000
    )


def select_all(ignore: bool, entries: int, users: int) -> float:
    from django.contrib.auth import get_user_model

    from mailops.models import MailTrigger
    from mailops.services import send_test_mail_to_users

    empty_log()
    # On PostgreSQL, emptying the log (TRUNCATE ... CASCADE) empties the list too.
    fill_list(entries, users)
    start = time.perf_counter()
    summary = send_test_mail_to_users(
        get_user_model().objects.all(),
        trigger=MailTrigger.ADMIN_ACTION,
        ignore_suppression=ignore,
    )
    elapsed = time.perf_counter() - start
    expected = 0 if ignore else len(range(0, users, 100))
    if summary.suppressed != expected:
        raise RuntimeError(f"expected {expected} suppressed, got {summary.suppressed}")
    return elapsed


def site_mail(suppress: bool, sends: int) -> float:
    from django.conf import settings
    from django.core import mail

    settings.MAILOPS = {
        **settings.MAILOPS,
        "AUDIT_ALL_MAIL": True,
        "AUDIT_WRITE": "inline",
        "SUPPRESS_SITE_MAIL": suppress,
    }
    from mailops.audit import hook

    hook.install()
    start = time.perf_counter()
    for _ in range(sends):
        mail.send_mail(
            "Hi",
            "Body",
            "site@example.com",
            ["bench0@example.com", "ok@example.net"],
            using="local",
        )
    return (time.perf_counter() - start) / sends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=10_000, help="suppression list size")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sends", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as db_dir:
        database = setup_django(db_dir)
        from django.conf import settings

        settings.MAILERS = {
            **settings.MAILERS,
            "local": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
        }
        make_users(args.users)
        print(f"Suppression: {args.users:,} users, {args.entries:,} entries, database: {database}")
        sizes = (args.entries, args.users)
        checked = [select_all(False, *sizes) for _ in range(args.runs)]
        ignored = [select_all(True, *sizes) for _ in range(args.runs)]
        a, b = statistics.median(checked), statistics.median(ignored)
        print(f"  select all, list checked   median {a:6.3f} s")
        print(f"  select all, list ignored   median {b:6.3f} s   (checked/ignored: {a / b:4.2f}x)")
        fill_list(args.entries, args.users)
        # Interleaved, so a warming cache favours neither.
        rounds = [(site_mail(True, args.sends), site_mail(False, args.sends)) for _ in range(5)]
        on = statistics.median(r[0] for r in rounds)
        off = statistics.median(r[1] for r in rounds)
        print(f"  site mail send, suppression on   {on * 1000:6.2f} ms")
        print(
            f"  site mail send, suppression off  {off * 1000:6.2f} ms   (on/off: {on / off:4.2f}x)"
        )
        empty_log()


if __name__ == "__main__":
    main()
