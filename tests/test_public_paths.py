"""What hosts rely on keeps its name, and the package keeps its shape.

Every path the documentation (the API reference, the how-to guides) names is
imported here; the layout rules of ``mailops/`` (imports one way, no cycles,
small modules) are read from the source, so a change that breaks them fails
here rather than in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import get_commands
from django.template.loader import get_template
from django.urls import reverse

PACKAGE = Path(__file__).resolve().parent.parent / "mailops"
MAX_MODULE_LINES = 400


def test_documented_python_paths_import(tmp_path: Path) -> None:
    import inspect

    from django.contrib import admin
    from django.core.mail.backends.base import BaseEmailBackend
    from django.tasks.backends.base import BaseTaskBackend

    from mailops.admin import MailLogAdmin
    from mailops.backends.outbox import EmailBackend
    from mailops.mailer_urls import MailerURLError, mailers_from_environ
    from mailops.models import MailLog
    from mailops.recipients import from_addresses
    from mailops.services import (
        SendSummary,
        UnknownMailer,
        plan_delivery,
        resend_logs,
        send_test_mail,
        send_test_mail_to_users,
    )
    from mailops.task_backends.celery import CeleryBackend
    from mailops.task_backends.celery_app import app
    from mailops.tasks import deliver_batch_task
    from mailops.user_admin import SendTestMailAdminMixin, UserImportExportMixin

    assert type(admin.site._registry[MailLog]) is MailLogAdmin
    assert issubclass(EmailBackend, BaseEmailBackend)
    assert issubclass(CeleryBackend, BaseTaskBackend)
    assert issubclass(MailerURLError, ImproperlyConfigured)
    assert issubclass(UnknownMailer, ImproperlyConfigured)
    assert app.main == "mailops"
    assert [r.address for r in from_addresses([" a@example.com "])] == ["a@example.com"]
    assert mailers_from_environ({}, outbox_dir=tmp_path).mailers.keys() >= {"default"}
    for service in (send_test_mail, send_test_mail_to_users, resend_logs, plan_delivery):
        keyword_only = {
            name
            for name, parameter in inspect.signature(service).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        }
        assert keyword_only, service
    assert {"sent", "failed", "rejected", "queued", "ok"} <= set(dir(SendSummary))
    assert {"get_actions", "has_send_test_mail_permission"} <= set(dir(SendTestMailAdminMixin))
    assert "has_import_permission" in dir(UserImportExportMixin)
    # Queued tasks store this path: it must never move.
    assert deliver_batch_task.module_path == "mailops.tasks.deliver_batch_task"


def test_settings_keys_and_check_ids_are_kept() -> None:
    from django.core import checks

    from mailops.conf import DEFAULTS

    documented = {
        "DEFAULT_MAILER",
        "FROM_EMAILS",
        "CHUNK_SIZE",
        "DELIVERY_CHUNK_SIZE",
        "WRITE_IN_REQUEST_LIMIT",
        "WRITE_CHUNK_SIZE",
        "TASK_BACKEND",
        "ASYNC_THRESHOLD",
        "DELIVERY_CONCURRENCY",
        "MAX_ATTEMPTS",
        "RETRY_BACKOFF",
        "SENDING_LEASE",
        "THROTTLE",
        "SELF_SERVICE_LIMIT",
        "SELF_SERVICE_WINDOW",
        "DKIM_SELECTORS",
        "DNS_NAMESERVERS",
        "MAILBOXES",
        "HEALTH_TOKEN",
    }
    assert documented <= set(DEFAULTS)
    registered = {check.__name__ for check in checks.registry.registry.get_checks()}
    assert {"check_mailops_settings", "check_mailers", "check_debug_with_real_mailers"} <= (
        registered
    )
    source = "".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    for number in (1, 2, 3, 4, 5, 6, 10, 11, 12, 30, 31):
        assert f'id="mailops.E{number:03d}"' in source
    for number in (1, 2, 3, 4, 5, 6, 7, 8, 30):
        assert f'id="mailops.W{number:03d}"' in source


def test_command_names_are_kept() -> None:
    commands = get_commands()
    assert commands["sendtestmail"] == "mailops"
    assert commands["mailops_deliver"] == "mailops"
    assert commands["maildoctor"] == "mailops"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("admin:mailops_maillog_changelist", {}),
        ("admin:mailops_maillog_export_csv", {}),
        ("admin:mailops_mailers", {}),
        ("admin:mailops_batch", {"batch_id": "6f1c1d4e-0000-4000-8000-000000000000"}),
        ("admin:mailops_batch_progress", {"batch_id": "6f1c1d4e-0000-4000-8000-000000000000"}),
        ("mailops:self_service", {}),
        ("mailops:health", {}),
        ("mailops:metrics", {}),
        ("admin:mailops_mailers_verify", {}),
        ("admin:mailops_mailer_dns", {"alias": "default"}),
        ("anymail:postmark_tracking_webhook", {}),
    ],
)
def test_url_names_are_kept(name: str, kwargs: dict[str, str]) -> None:
    assert reverse(name, kwargs=kwargs or None)


@pytest.mark.parametrize(
    "template",
    [
        "admin/mailops/send_test_mail_confirmation.html",
        "admin/mailops/maillog/resend_confirmation.html",
        "admin/mailops/maillog/change_list.html",
        "admin/mailops/maillog/change_form.html",
        "admin/mailops/maillog/batch_progress.html",
        "admin/mailops/mailers.html",
        "mailops/self_service.html",
    ],
)
def test_template_paths_are_kept(template: str) -> None:
    assert get_template(template).origin.name.endswith(template)


def test_permission_codenames_and_logger_names_are_kept(db) -> None:
    from django.contrib.auth.models import Permission

    from mailops import permissions

    codenames = set(
        Permission.objects.filter(content_type__app_label="mailops").values_list(
            "codename", flat=True
        )
    )
    for name in (permissions.SEND_TEST_MAIL, permissions.EXPORT_MAILLOG, permissions.VIEW_MAILLOG):
        assert name.split(".", 1)[1] in codenames
    from mailops import views
    from mailops.sending import batches, delivery, pending, session
    from mailops.tracking import events, guards

    names = {
        module.logger.name
        for module in (batches, delivery, pending, session, events, guards, views)
    }
    assert names == {
        "mailops.services",
        "mailops.delivery",
        "mailops.pending_batches",
        "mailops.tracking",
        "mailops.views",
    }


# --- the layout -------------------------------------------------------------------


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path) -> set[str]:
    """The mailops modules ``path`` imports at run time (``if TYPE_CHECKING:`` left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mailops"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mailops"))
    return found & set(_modules())


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_top_level_is_the_public_surface() -> None:
    top = [path for path in PACKAGE.glob("*.py")]
    assert len(top) <= 20, sorted(path.name for path in top)


def test_imports_run_one_way() -> None:
    """admin -> services/sending -> mailers, models; nothing imports the admin."""
    shims = {"mailops.user_admin"}  # the documented path of the user-admin mixins
    for name, path in _modules().items():
        imported = _imports(path)
        if not name.startswith("mailops.admin") and name not in shims:
            assert not {m for m in imported if m.startswith("mailops.admin")}, name
        if name.startswith(("mailops.sending", "mailops.mailers", "mailops.tracking")):
            assert "mailops.services" not in imported, name
        if name.startswith("mailops.mailers"):
            assert not {m for m in imported if m.startswith("mailops.sending")}, name
    # The foundation imports only the foundation.
    foundation = {
        "mailops.conf",
        "mailops.exceptions",
        "mailops.statuses",
        "mailops.querysets",
        "mailops.models",
        # Bounce reading's models, imported by mailops.models (a module of their own for size).
        "mailops.bounces.models",
        # The suppression list's model (imported by mailops.models; only Django).
        "mailops.suppression.models",
        # The retention's daily history (imported by mailops.models; only Django).
        "mailops.retention.models",
        # What RETENTION may say (read by mailops.conf's rules; Django and statuses).
        "mailops.retention.policy",
    }
    for name in foundation:
        assert _imports(_modules()[name]) <= foundation, name


def test_there_is_no_import_cycle() -> None:
    graph = {name: _imports(path) - {name} for name, path in _modules().items()}

    def reaches(start: str, target: str) -> bool:
        seen, stack = set(), list(graph[start])
        while stack:
            current = stack.pop()
            if current == target:
                return True
            if current not in seen:
                seen.add(current)
                stack.extend(graph.get(current, ()))
        return False

    # A package importing its own submodules (re-exports) is not a cycle.
    cycles = [
        (a, b)
        for a in graph
        for b in graph[a]
        if not b.startswith(f"{a}.") and not a.startswith(f"{b}.") and reaches(b, a)
    ]
    assert cycles == []
