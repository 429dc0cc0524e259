"""The reference pages cannot drift from the code.

Each test reads what the code can do (the keys of ``mailops.conf.DEFAULTS``,
the check and doctor ids in ``mailops/``, each command's argparse parser, the
environment variables the reference project reads) and what
``docs/reference/`` documents, and fails naming exactly what is missing, or
documented but gone, and the page to fix. Plain file reading: no Sphinx build.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

from mailops.conf import DEFAULTS
from mailops.deliverability.findings import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mailops"
REFERENCE = ROOT / "docs" / "reference"

# Files whose environment variables the reference project reads.
ENVIRONMENT_SOURCES = (
    "site_config/settings.py",
    "mailops/mailers/environ.py",
    "mailops/arrival/mailboxes.py",
    "mailops/task_backends/celery_app.py",
)

# Options every Django command has; documented once at the top of commands.md.
DJANGO_COMMON_OPTIONS = {
    "-h",
    "--help",
    "--version",
    "-v",
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
}

LEVELS = {"E": "error", "W": "warning"}


# --- reading the pages -------------------------------------------------------------

_LABEL = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*$")


def page(name: str) -> str:
    path = REFERENCE / name
    assert path.exists(), f"docs/reference/{name} is missing"
    return path.read_text()


def labelled_headings(text: str) -> dict[str, str]:
    """``{label: heading text}`` for every ``(label)=`` line directly above a heading."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _LABEL.match(line)
        if not match:
            continue
        following = next((nxt for nxt in lines[index + 1 :] if nxt.strip()), "")
        heading = _HEADING.match(following)
        found[match["label"]] = heading["text"] if heading else ""
    return found


def section(text: str, start_label: str, next_label_prefix: str) -> str:
    """The text from ``(start_label)=`` to the next label starting with the prefix."""
    start = text.find(f"({start_label})=")
    if start < 0:
        return ""
    end = text.find(f"({next_label_prefix}", start + len(start_label) + 3)
    return text[start : end if end >= 0 else len(text)]


def entry(text: str, label: str) -> str:
    """The text of one labelled entry, up to the next label."""
    start = text.find(f"({label})=")
    if start < 0:
        return ""
    rest = text[start + len(label) + 3 :]
    match = re.search(r"^\([^)\s]+\)=\s*$", rest, flags=re.MULTILINE)
    return rest[: match.start()] if match else rest


def source_ids(pattern: str) -> dict[str, list[str]]:
    """Every id matching ``pattern`` in mailops' sources, with the files naming it."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for match in re.findall(pattern, path.read_text()):
            found.setdefault(match, []).append(str(path.relative_to(ROOT)))
    return found


def _listing(names: object) -> str:
    return ", ".join(sorted(names))  # type: ignore[call-overload]


# --- (a) MAILOPS keys --------------------------------------------------------------


def mailops_keys_section() -> str:
    text = page("settings.md")
    start, end = text.find("## `MAILOPS` keys"), text.find("## Django settings mailops reads")
    assert start >= 0, "docs/reference/settings.md must have a section '## `MAILOPS` keys'"
    assert end > start, (
        "docs/reference/settings.md must have a section '## Django settings mailops reads' "
        "after '## `MAILOPS` keys'"
    )
    return text[start:end]


def test_every_mailops_key_has_its_own_entry_in_settings_reference() -> None:
    headings = labelled_headings(mailops_keys_section())
    missing = [key for key in DEFAULTS if f"`{key}`" not in headings.get(f"setting-{key}", "")]
    assert not missing, (
        f"MAILOPS key(s) {_listing(missing)} (mailops/conf.py DEFAULTS) are not documented in "
        "docs/reference/settings.md under '## `MAILOPS` keys': add for each an entry "
        "'(setting-KEY)=' followed by a heading '#### `KEY`', with its type and default."
    )


def test_every_mailops_key_entry_states_the_default_of_the_code() -> None:
    text = mailops_keys_section()
    wrong = []
    for key, default in DEFAULTS.items():
        stated = re.search(r"^- Default: `(?P<value>[^`]*)`", entry(text, f"setting-{key}"), re.M)
        if stated is None or stated["value"] != repr(default).replace("'", '"'):
            shown = stated["value"] if stated else "(none)"
            wrong.append(f"{key}: documented {shown}, code {default!r}")
    assert not wrong, (
        "docs/reference/settings.md states a default that is not the one in mailops/conf.py "
        "(a line '- Default: `VALUE`' in each entry): " + "; ".join(wrong)
    )


def test_settings_reference_documents_no_mailops_key_the_code_lacks() -> None:
    documented = {
        label.removeprefix("setting-")
        for label in labelled_headings(mailops_keys_section())
        if label.startswith("setting-")
    }
    gone = documented - set(DEFAULTS)
    assert not gone, (
        f"docs/reference/settings.md documents MAILOPS key(s) {_listing(gone)}, which "
        "mailops/conf.py DEFAULTS no longer has: remove their entries (or restore the keys)."
    )


# --- (b) system check ids ----------------------------------------------------------


def test_every_check_id_the_code_can_emit_has_its_own_anchor() -> None:
    emitted = source_ids(r"mailops\.[EW]\d{3}")
    headings = labelled_headings(page("checks.md"))
    missing = [
        f"{check_id} (in {', '.join(sorted(set(files)))})"
        for check_id, files in sorted(emitted.items())
        if headings.get(check_id.replace(".", "-").lower()) != check_id
    ]
    assert not missing, (
        f"System check id(s) not documented in docs/reference/checks.md: {'; '.join(missing)}. "
        "Add for each '(mailops-e001)=' (the id, lower case, '-' for '.') directly above "
        "'### mailops.E001', then its level, cause and fix."
    )


def test_checks_reference_documents_no_id_the_code_no_longer_emits() -> None:
    emitted = set(source_ids(r"mailops\.[EW]\d{3}"))
    documented = set(re.findall(r"^#{1,6}\s+(mailops\.[EW]\d{3})\s*$", page("checks.md"), re.M))
    gone = documented - emitted
    assert not gone, (
        f"docs/reference/checks.md documents check id(s) {_listing(gone)}, which nothing in "
        "mailops/ emits any more: remove their entries."
    )


def test_checks_reference_is_ordered_by_id_with_the_level_of_the_id() -> None:
    text = page("checks.md")
    documented = re.findall(r"^#{1,6}\s+(mailops\.[EW]\d{3})\s*$", text, re.M)
    assert documented == sorted(documented), (
        "docs/reference/checks.md: the check ids must appear in id order "
        f"(E001 … E031, then W001 …); found {documented}"
    )
    wrong = [
        check_id
        for check_id in documented
        if f"**Level:** {LEVELS[check_id[8]]}"
        not in entry(text, check_id.replace(".", "-").lower())
    ]
    assert not wrong, (
        f"docs/reference/checks.md: the entries of {_listing(wrong)} must say "
        "'**Level:** error' (E ids) or '**Level:** warning' (W ids)."
    )


# --- (c) doctor finding ids --------------------------------------------------------


def test_every_doctor_finding_id_has_its_own_anchor_and_the_catalogue_level() -> None:
    ids = set(CATALOGUE) | set(source_ids(r"mailops\.D\d{3}"))
    text = page("doctor-findings.md")
    headings = labelled_headings(text)
    missing = sorted(i for i in ids if headings.get(i.replace(".", "-").lower()) != i)
    assert not missing, (
        f"Doctor finding id(s) not documented in docs/reference/doctor-findings.md: "
        f"{_listing(missing)}. Add for each '(mailops-d001)=' directly above "
        "'### mailops.D001', then its level, cause and fix."
    )
    wrong = [
        f"{finding_id} is {CATALOGUE[finding_id][0]}"
        for finding_id in sorted(CATALOGUE)
        if f"**Level:** {CATALOGUE[finding_id][0]}."
        not in entry(text, finding_id.replace(".", "-").lower())
    ]
    assert not wrong, (
        "docs/reference/doctor-findings.md states a level that is not the one in "
        f"mailops/deliverability/findings.py CATALOGUE: {'; '.join(wrong)}."
    )


def test_doctor_reference_documents_no_finding_the_code_no_longer_reports() -> None:
    ids = set(CATALOGUE) | set(source_ids(r"mailops\.D\d{3}"))
    documented = set(
        re.findall(r"^#{1,6}\s+(mailops\.D\d{3})\s*$", page("doctor-findings.md"), re.M)
    )
    gone = documented - ids
    assert not gone, (
        f"docs/reference/doctor-findings.md documents finding id(s) {_listing(gone)}, which "
        "mailops/deliverability no longer reports: remove their entries."
    )


# --- (d) command options -----------------------------------------------------------


def mailops_commands() -> list[str]:
    return sorted(name for name, app in get_commands().items() if app == "mailops")


def test_the_commands_are_found() -> None:
    assert mailops_commands() == [
        "exportmaillog",
        "mailbounces",
        "maildoctor",
        "mailops_deliver",
        "purgemaillog",
        "sendtestmail",
    ]


@pytest.mark.parametrize("name", mailops_commands())
def test_every_option_of_every_command_is_in_the_commands_reference(name: str) -> None:
    text = section(page("commands.md"), f"command-{name}", "command-")
    assert text, (
        f"docs/reference/commands.md has no section for `{name}`: add '(command-{name})=' "
        f"above '## `{name}`', with its options, exit codes and --json shape."
    )
    parser = load_command_class("mailops", name).create_parser("manage.py", name)
    missing = []
    for action in parser._actions:
        if action.option_strings:
            missing += [
                option
                for option in action.option_strings
                if option not in DJANGO_COMMON_OPTIONS and f"`{option}" not in text
            ]
        else:
            shown = str(action.metavar or action.dest)
            if f"`{shown}" not in text:
                missing.append(f"{shown} (positional)")
    assert not missing, (
        f"Option(s) of `manage.py {name}` not documented in its section of "
        f"docs/reference/commands.md: {', '.join(missing)}. Add each to the options table "
        f"under '## `{name}`' (as `{missing[0].split()[0]} …`) with what it does."
    )


# --- (e) environment variables -----------------------------------------------------


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_environ(node: ast.AST) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name == "environ"


def environment_variables() -> dict[str, str]:
    """``{variable: file}`` for every environment variable the reference project reads.

    Read as ``os.environ.get("X")``, ``environ["X"]``, ``"X" in os.environ``,
    ``env_bool/env_list/env_int("X")``, and the ``MAILER_<ALIAS>_URL``-style
    patterns (``re.compile(r"^MAILER_(?P<alias>…)_URL$")``).
    """
    found: dict[str, str] = {}
    for relative in ENVIRONMENT_SOURCES:
        tree = ast.parse((ROOT / relative).read_text())
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr == "get":
                    name = _constant(node.args[0]) if _is_environ(func.value) else None
                elif isinstance(func, ast.Name) and func.id.startswith("env_"):
                    name = _constant(node.args[0])
                elif isinstance(func, ast.Attribute) and func.attr == "compile":
                    pattern = _constant(node.args[0]) or ""
                    shape = re.fullmatch(r"\^([A-Z_]+)\(\?P<(\w+)>[^)]*\)([A-Z_]*)\$", pattern)
                    if shape:
                        name = f"{shape[1]}<{shape[2].upper()}>{shape[3]}"
            elif isinstance(node, ast.Subscript) and _is_environ(node.value):
                name = _constant(node.slice)
            elif (
                isinstance(node, ast.Compare)
                and any(isinstance(op, ast.In) for op in node.ops)
                and any(_is_environ(comparator) for comparator in node.comparators)
            ):
                name = _constant(node.left)
            if name:
                found.setdefault(name, relative)
    return found


def env_label(variable: str) -> str:
    return "env-" + variable.replace("<", "").replace(">", "")


def test_environment_variables_are_found() -> None:
    found = environment_variables()
    # The scan itself works: a few of every kind of read.
    assert {"MAILER_URL", "MAILER_<ALIAS>_URL", "MAILBOX_<ALIAS>_URL", "DEBUG"} <= set(found)
    assert {"SECRET_KEY", "CELERY_BROKER_URL", "MAILOPS_AUDIT_ALL_MAIL"} <= set(found)


def test_every_environment_variable_has_its_own_entry() -> None:
    headings = labelled_headings(page("environment.md"))
    missing = [
        f"{variable} (read in {source})"
        for variable, source in sorted(environment_variables().items())
        if f"`{variable}`" not in headings.get(env_label(variable), "")
    ]
    assert not missing, (
        f"Environment variable(s) not documented in docs/reference/environment.md: "
        f"{'; '.join(missing)}. Add for each '(env-NAME)=' ('<ALIAS>' written ALIAS) "
        "directly above a heading '### `NAME`', with what it sets and its default."
    )


def test_environment_reference_documents_no_variable_nothing_reads() -> None:
    read = {env_label(variable) for variable in environment_variables()}
    documented = {
        label for label in labelled_headings(page("environment.md")) if label.startswith("env-")
    }
    gone = documented - read
    assert not gone, (
        f"docs/reference/environment.md documents {_listing(gone)}, which "
        f"{', '.join(ENVIRONMENT_SOURCES)} no longer read: remove the entries."
    )


# --- URL names (beyond the brief's list: cheap, and pages link by these names) --------


def mailops_url_names() -> set[str]:
    from django.urls import URLPattern, URLResolver, get_resolver

    names: set[str] = set()

    def walk(resolver: URLResolver, namespace: str) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                full = namespace + pattern.name
                if full.startswith(("mailops:", "admin:mailops_")):
                    names.add(full)

    walk(get_resolver(), "")
    return names


def test_every_mailops_url_name_is_in_the_urls_reference() -> None:
    names = mailops_url_names()
    assert "admin:mailops_mailer_dns" in names
    text = page("urls.md")
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, (
        f"URL name(s) {', '.join(missing)} are not documented in docs/reference/urls.md: "
        "add a row (name, path, what it serves, who may open it) to its table."
    )


# --- anymail providers (the mailer URL table follows the installed anymail) --------


def test_every_installed_anymail_provider_has_a_row_in_the_mailer_urls_reference() -> None:
    from mailops.mailers.anymail_providers import installed_providers, url_name

    text = page("mailer-urls.md")
    missing = [
        url_name(provider)
        for provider in installed_providers()
        if f"`anymail+{url_name(provider)}://" not in text
    ]
    assert not missing, (
        f"anymail provider(s) {', '.join(missing)} (installed django-anymail) have no row in "
        "the table under '## anymail providers' of docs/reference/mailer-urls.md: add "
        "'| Name | `anymail+NAME://?option=…` | notes |' for each."
    )


# --- texts that send users to the documentation ------------------------------------


def test_no_text_in_the_package_sends_users_to_the_readme() -> None:
    """The README is a front page; hints, help texts and templates name a docs page."""
    pointing = [
        str(path.relative_to(ROOT))
        for path in sorted(PACKAGE.rglob("*"))
        if path.suffix in {".py", ".html", ".txt"} and "README" in path.read_text()
    ]
    assert not pointing, (
        f"{', '.join(pointing)} mention the README, which no longer holds the guide: name "
        "the documentation page instead (e.g. 'see mailops.E030 in the checks reference')."
    )


def test_maildoctor_json_help_names_the_page_with_the_shape() -> None:
    parser = load_command_class("mailops", "maildoctor").create_parser("manage.py", "maildoctor")
    [json_option] = [action for action in parser._actions if "--json" in action.option_strings]
    assert "commands reference" in str(json_option.help)
    assert "### `--json`" in section(page("commands.md"), "command-maildoctor", "command-")


def test_the_e030_hint_names_an_entry_the_checks_reference_has() -> None:
    source = (PACKAGE / "arrival" / "checks.py").read_text()
    assert "see mailops.E030 in the checks reference" in source
    assert labelled_headings(page("checks.md")).get("mailops-e030") == "mailops.E030"
