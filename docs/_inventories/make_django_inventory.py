"""Write docs/_inventories/django.inv, the intersphinx inventory for Django 6.1.

Why a hand-made inventory: the docs build runs without internet access (CI has
none), so intersphinx cannot fetch https://docs.djangoproject.com/en/6.1/_objects/,
and no package this machine can install ships Django 6.1's objects.inv (Debian's
python-django-doc is Django 3.2, whose pages lack MAILERS, TASKS and the tasks
framework). This script writes only the targets mailops' documentation refers to,
each with its page and anchor on docs.djangoproject.com/en/6.1/ (the dirhtml URLs
Django's own inventory uses; the anchors follow Sphinx's ``std-setting-NAME`` /
``django-admin-NAME`` / dotted-path scheme). It is not a copy of Django's inventory.

A page that needs another Django target: add it to TARGETS, then run
    python docs/_inventories/make_django_inventory.py
and commit the new django.inv together with this file.
"""

from __future__ import annotations

import zlib
from pathlib import Path

# (name, domain:role, page/#anchor or page/, display name or "-")
TARGETS: list[tuple[str, str, str, str]] = [
    # Settings (ref/settings/).
    *(
        (name, "std:setting", f"ref/settings/#std-setting-{name}", "-")
        for name in (
            "ADMINS",
            "ALLOWED_HOSTS",
            "CACHES",
            "CSRF_TRUSTED_ORIGINS",
            "DATABASES",
            "DEBUG",
            "DEFAULT_FROM_EMAIL",
            "EMAIL_BACKEND",
            "EMAIL_HOST",
            "INSTALLED_APPS",
            "LOGGING",
            "MAILERS",
            "MIDDLEWARE",
            "ROOT_URLCONF",
            "SECRET_KEY",
            "SERVER_EMAIL",
            "STATIC_ROOT",
            "TASKS",
            "TIME_ZONE",
        )
    ),
    # django-admin commands.
    *(
        (name, "std:django-admin", f"ref/django-admin/#django-admin-{name}", "-")
        for name in (
            "check",
            "createsuperuser",
            "loaddata",
            "migrate",
            "runserver",
            "sendtestemail",
            "shell",
        )
    ),
    (
        "collectstatic",
        "std:django-admin",
        "ref/contrib/staticfiles/#django-admin-collectstatic",
        "-",
    ),
    # Python objects.
    ("django.apps.AppConfig", "py:class", "ref/applications/#django.apps.AppConfig", "-"),
    (
        "django.contrib.admin.AdminSite",
        "py:class",
        "ref/contrib/admin/#django.contrib.admin.AdminSite",
        "-",
    ),
    (
        "django.contrib.admin.ModelAdmin",
        "py:class",
        "ref/contrib/admin/#django.contrib.admin.ModelAdmin",
        "-",
    ),
    (
        "django.contrib.auth.models.User",
        "py:class",
        "ref/contrib/auth/#django.contrib.auth.models.User",
        "-",
    ),
    (
        "django.core.checks.CheckMessage",
        "py:class",
        "ref/checks/#django.core.checks.CheckMessage",
        "-",
    ),
    (
        "django.core.checks.register",
        "py:function",
        "topics/checks/#django.core.checks.register",
        "-",
    ),
    (
        "django.core.exceptions.ImproperlyConfigured",
        "py:exception",
        "ref/exceptions/#django.core.exceptions.ImproperlyConfigured",
        "-",
    ),
    (
        "django.core.mail.EmailMessage",
        "py:class",
        "topics/email/#django.core.mail.EmailMessage",
        "-",
    ),
    (
        "django.core.mail.EmailMultiAlternatives",
        "py:class",
        "topics/email/#django.core.mail.EmailMultiAlternatives",
        "-",
    ),
    (
        "django.core.mail.mail_admins",
        "py:function",
        "topics/email/#django.core.mail.mail_admins",
        "-",
    ),
    ("django.core.mail.send_mail", "py:function", "topics/email/#django.core.mail.send_mail", "-"),
    (
        "django.core.mail.send_mass_mail",
        "py:function",
        "topics/email/#django.core.mail.send_mass_mail",
        "-",
    ),
    (
        "django.core.management.BaseCommand",
        "py:class",
        "howto/custom-management-commands/#django.core.management.BaseCommand",
        "-",
    ),
    (
        "django.core.management.CommandError",
        "py:exception",
        "howto/custom-management-commands/#django.core.management.CommandError",
        "-",
    ),
    ("django.db.models.Manager", "py:class", "topics/db/managers/#django.db.models.Manager", "-"),
    ("django.db.models.Model", "py:class", "ref/models/instances/#django.db.models.Model", "-"),
    (
        "django.db.models.query.QuerySet",
        "py:class",
        "ref/models/querysets/#django.db.models.query.QuerySet",
        "-",
    ),
    ("django.dispatch.Signal", "py:class", "topics/signals/#django.dispatch.Signal", "-"),
    ("django.http.HttpRequest", "py:class", "ref/request-response/#django.http.HttpRequest", "-"),
    ("django.http.HttpResponse", "py:class", "ref/request-response/#django.http.HttpResponse", "-"),
    ("django.http.JsonResponse", "py:class", "ref/request-response/#django.http.JsonResponse", "-"),
    (
        "django.test.override_settings",
        "py:function",
        "topics/testing/tools/#django.test.override_settings",
        "-",
    ),
    # Whole pages (std:doc), linked as {external+django:doc}`topics/email`.
    (
        "howto/deployment/checklist",
        "std:doc",
        "howto/deployment/checklist/",
        "Deployment checklist",
    ),
    (
        "howto/mailers-migration",
        "std:doc",
        "howto/mailers-migration/",
        "Migrating email to mailers",
    ),
    ("ref/checks", "std:doc", "ref/checks/", "System check framework"),
    ("ref/contrib/admin/index", "std:doc", "ref/contrib/admin/", "The Django admin site"),
    ("ref/django-admin", "std:doc", "ref/django-admin/", "django-admin and manage.py"),
    ("ref/settings", "std:doc", "ref/settings/", "Settings"),
    (
        "topics/auth/default",
        "std:doc",
        "topics/auth/default/",
        "Using the Django authentication system",
    ),
    ("topics/email", "std:doc", "topics/email/", "Sending email"),
    ("topics/logging", "std:doc", "topics/logging/", "Logging"),
    ("topics/tasks", "std:doc", "topics/tasks/", "Django's Tasks framework"),
]


def inventory_bytes() -> bytes:
    header = (
        b"# Sphinx inventory version 2\n"
        b"# Project: Django\n"
        b"# Version: 6.1\n"
        b"# The remainder of this file is compressed using zlib.\n"
    )
    lines = "".join(
        f"{name} {role} 1 {uri} {display}\n" for name, role, uri, display in sorted(TARGETS)
    )
    return header + zlib.compress(lines.encode())


if __name__ == "__main__":
    target = Path(__file__).with_name("django.inv")
    target.write_bytes(inventory_bytes())
    print(f"wrote {target} ({len(TARGETS)} targets)")
