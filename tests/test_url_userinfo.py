"""A reserved character left unencoded in a URL's user name or password is a clear error.

``urlsplit`` reads ``smtp://me:25#x@host`` as host ``me``, port 25 and no
password; mailer and mailbox URLs refuse it instead, naming the character
to percent-encode and never the password.
"""

from __future__ import annotations

import pytest

from mailops.arrival.mailboxes import MailboxURLError, parse_mailbox_url
from mailops.mailers.environ import MailerURLError, mailers_from_environ, parse_mailer_url

UNENCODED = [
    # (URL, the character the message names, its encoding)
    ("smtp://me:25#x@host", "'#'", "%23"),
    ("smtp+tls://me:hunter#22@smtp.example.com", "'#'", "%23"),
    ("smtp://me:12?hunter22@host", "'?'", "%3F"),
    ("smtps://me:hunter?22@smtp.example.com:465?timeout=5", "'?'", "%3F"),
    ("smtp://me:12/hunter22@host", "'/'", "%2F"),
    ("smtp://me@example.com:hunter22@smtp.example.com", "'@'", "%40"),
    ("smtp://me:hun@ter22@smtp.example.com", "'@'", "%40"),
    ("smtp://me:hunter[22@smtp.example.com", "'['", "%5B"),
    ("smtp://me:hunter]22@smtp.example.com", "']'", "%5D"),
    ("anymail+postmark://?server_token=hunter#22", "'#'", "%23"),
]


@pytest.mark.parametrize(("url", "char", "encoded"), UNENCODED)
def test_mailer_url_names_the_character_to_encode_never_the_password(
    url: str, char: str, encoded: str
) -> None:
    with pytest.raises(MailerURLError) as caught:
        parse_mailer_url(url, variable="MAILER_URL")
    text = str(caught.value)
    assert text.startswith("MAILER_URL: ")
    assert f"contains {char}, percent-encode it as {encoded}" in text
    for secret in ("hunter", "22", "ter2", "25#x"):
        assert secret not in text


def test_a_hash_in_the_password_is_not_read_as_host_and_port(tmp_path) -> None:
    with pytest.raises(MailerURLError, match=r"^MAILER_URL: has a '#' that is not"):
        mailers_from_environ({"MAILER_URL": "smtp://me:25#x@host"}, outbox_dir=tmp_path)


def test_the_check_runs_before_rate_and_dkim_selector_are_split_off(tmp_path) -> None:
    # Splitting off rate= re-encodes the query, which would hide the stray "@".
    for query in ("&rate=2", "&dkim_selector=s1"):
        with pytest.raises(MailerURLError, match="'\\?'"):
            mailers_from_environ(
                {"MAILER_BACKUP_URL": f"smtp://me:12?hunter22@host{query}"}, outbox_dir=tmp_path
            )


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("smtp://me:25%23x@host", "25#x"),
        ("smtp://me:a%3Fb%2Fc%40d%5Be%5D@host", "a?b/c@d[e]"),
        ("smtp://me%40example.com:p%40ss@host?from=ops@example.com", "p@ss"),
        ("smtp://me:pa:ss@host", "pa:ss"),
    ],
)
def test_percent_encoded_characters_and_an_at_in_a_query_value_are_fine(
    url: str, password: str
) -> None:
    options = parse_mailer_url(url, variable="MAILER_URL")[0]["OPTIONS"]
    assert options["password"] == password
    assert options["host"] == "host"


def test_a_file_path_may_contain_an_at() -> None:
    entry = parse_mailer_url("file:///srv/mail@host", variable="MAILER_URL")[0]
    assert entry["OPTIONS"] == {"file_path": "/srv/mail@host"}


@pytest.mark.parametrize(("url", "char", "encoded"), UNENCODED[:9])
def test_mailbox_urls_share_the_rule(url: str, char: str, encoded: str) -> None:
    imap_url = "imap" + url[url.index("://") :]
    with pytest.raises(MailboxURLError) as caught:
        parse_mailbox_url(imap_url, variable="MAILBOX_URL")
    text = str(caught.value)
    assert text.startswith("MAILBOX_URL: ")
    assert f"contains {char}, percent-encode it as {encoded}" in text
    assert "hunter" not in text


def test_an_encoded_mailbox_password_still_reads_back() -> None:
    entry = parse_mailbox_url("imaps://ops:se%23cret@imap.example.com", variable="MAILBOX_URL")
    assert (entry["host"], entry["password"]) == ("imap.example.com", "se#cret")
