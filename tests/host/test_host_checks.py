"""``manage.py check`` catches what a host project can get wrong, before a page answers 500."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from mailops.admin.user_resources import recipient_columns
from mailops.checks import (
    check_installed_apps,
    check_login_url,
    check_mailops_settings,
    check_self_service_middleware,
    check_user_model,
)
from mailops.conf import get_setting
from mailops.models import MailLog
from tests.commands import run_sendtestmail
from tests.host.accounts.models import Guest, Member

pytestmark = pytest.mark.django_db


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_the_host_as_configured_passes_every_check() -> None:
    call_command("check", fail_level="WARNING")


# --- E013: INSTALLED_APPS ----------------------------------------------------------


def test_import_export_missing_from_installed_apps_is_an_error() -> None:
    apps = [app for app in django_settings.INSTALLED_APPS if app != "import_export"]
    with override_settings(INSTALLED_APPS=apps):
        [error] = check_installed_apps()
        with pytest.raises(SystemCheckError, match=r"mailops\.E013"):
            call_command("check")

    assert error.id == "mailops.E013"
    assert "'import_export' is not in INSTALLED_APPS" in error.msg
    assert error.hint == "Add 'import_export' to INSTALLED_APPS (next to 'mailops')."


# --- E014: MAILOPS values ----------------------------------------------------------


def test_a_threshold_written_as_text_fails_check_and_is_named_at_send_time(settings) -> None:
    settings.MAILOPS = {"ASYNC_THRESHOLD": "50"}

    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    code, _, err = run_sendtestmail("ops@host.example")

    text = str(raised.value)
    assert "(mailops.E014) MAILOPS['ASYNC_THRESHOLD'] must be a whole number, 0 or more; " in text
    assert "it is '50' (str)." in text
    assert "remove the key to use the default, 50." in text
    assert code == 2
    assert "MAILOPS['ASYNC_THRESHOLD'] must be a whole number" in err
    assert not MailLog.objects.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHUNK_SIZE", 0),
        ("DELIVERY_CONCURRENCY", True),
        ("RETRY_BACKOFF", "60"),
        ("SELF_SERVICE_WINDOW", 0),
        ("SELF_SERVICE_LIMIT", -1),
        ("SENDING_LEASE", 0),
        ("DEFAULT_MAILER", ""),
        ("FROM_EMAILS", ["ops@host.example"]),
        ("THROTTLE", {"default": {"rate": "fast"}}),
        ("THROTTLE", {"default": {"per_day": 500}}),
    ],
)
def test_each_bad_value_is_an_error_and_the_accessor_refuses_it(settings, name, value) -> None:
    settings.MAILOPS = {name: value}

    messages = check_mailops_settings()

    assert ids(messages) == ["mailops.E014"]
    assert messages[0].msg.startswith(f"MAILOPS[{name!r}] must ")
    with pytest.raises(ImproperlyConfigured, match=rf"MAILOPS\['{name}'\] must "):
        get_setting(name)


def test_good_values_pass(settings) -> None:
    settings.MAILOPS = {
        "ASYNC_THRESHOLD": 0,
        "RETRY_BACKOFF": 0.5,
        "THROTTLE": {"default": {"rate": 0.5, "daily_quota": 500}, "relay": {}},
        "FROM_EMAILS": {"relay": "ops@host.example"},
    }

    assert check_mailops_settings() == []
    assert get_setting("RETRY_BACKOFF") == 0.5


def test_mailops_that_is_not_a_dict_is_an_error(settings) -> None:
    settings.MAILOPS = [("ASYNC_THRESHOLD", 5)]

    [error] = check_mailops_settings()

    assert error.id == "mailops.E014"
    assert error.msg == "settings.MAILOPS must be a dict, not list."


# --- W009/W010: what the user model lacks -------------------------------------------


def test_the_hosts_member_model_has_what_every_feature_needs() -> None:
    assert check_user_model(model=Member) == []


def test_a_user_model_without_staff_fields_loses_only_staff(settings, monkeypatch) -> None:
    [warning] = check_user_model(model=Guest)

    assert warning.id == "mailops.W010"
    assert "accounts.Guest has no is_staff or is_active field" in warning.msg
    assert "sendtestmail --staff" in warning.msg
    # Import/export keeps the columns the model has.
    assert recipient_columns(Guest) == ("nickname", "mail")

    settings.AUTH_USER_MODEL = "accounts.Guest"
    code, _, err = run_sendtestmail("--staff")
    assert code == 2
    assert err.startswith("--staff: The user model accounts.Guest has no is_staff or is_active")
    # Plain addresses still work.
    assert run_sendtestmail("ops@host.example")[0] == 0


def test_a_user_model_without_an_email_field_is_a_warning(monkeypatch) -> None:
    monkeypatch.setattr(Guest, "EMAIL_FIELD", "email_address")

    messages = check_user_model(model=Guest)

    assert ids(messages) == ["mailops.W009", "mailops.W010"]
    assert "has no field 'email_address' (its EMAIL_FIELD)" in messages[0].msg
    assert "Set EMAIL_FIELD on accounts.Guest" in messages[0].hint


# --- W011: LOGIN_URL for self-service ------------------------------------------------


def test_an_admin_login_as_login_url_is_a_warning(settings) -> None:
    assert check_login_url() == []  # the host's own login page

    settings.LOGIN_URL = "/console/login/"
    [warning] = check_login_url()
    with pytest.raises(SystemCheckError, match=r"mailops\.W011"):
        call_command("check", fail_level="WARNING")

    assert warning.id == "mailops.W011"
    assert "LOGIN_URL ('/console/login/') is an admin site's login" in warning.msg
    assert "self-service page (/mail/)" in warning.msg
    assert "LOGIN_URL = 'login'" in warning.hint


# --- E015: the self-service page's middleware ----------------------------------------


def test_self_service_without_the_message_middleware_is_an_error(settings) -> None:
    assert check_self_service_middleware() == []
    message_middleware = "django.contrib.messages.middleware.MessageMiddleware"
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != message_middleware]

    [error] = check_self_service_middleware()

    assert error.id == "mailops.E015"
    assert error.msg.startswith(f"The self-service page (/mail/) needs {message_middleware}")
    with pytest.raises(SystemCheckError, match=r"mailops\.E015"):
        call_command("check")
