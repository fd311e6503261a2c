"""The reply mailbox's settings: IMAP URLs, XOAUTH2 and the OAuth2 client, checked at start-up."""

from __future__ import annotations

import pytest

from core.errors import SettingsError
from core.settings import ImapConfig, SmtpConfig, load_settings

OAUTH = {
    "SAMVERKAN_OAUTH_TOKEN_URL": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
    "SAMVERKAN_OAUTH_CLIENT_ID": "id",
    "SAMVERKAN_OAUTH_CLIENT_SECRET": "hemlig",
    "SAMVERKAN_OAUTH_SCOPE": "https://outlook.office365.com/.default",
}


def test_an_imap_url_with_xoauth2() -> None:
    config = ImapConfig.from_url(
        "imaps://svar%40kommun.se@outlook.office365.com/INBOX?auth=xoauth2&done=Klara"
    )
    assert (config.host, config.port, config.username, config.password) == (
        "outlook.office365.com",
        993,
        "svar@kommun.se",
        None,
    )
    assert (config.folder, config.done_folder, config.auth, config.ssl) == (
        "INBOX",
        "Klara",
        "xoauth2",
        True,
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("imap://u:p@host/INBOX", "clear text"),
        ("imaps://u:p@host/INBOX?starttls=true", "already TLS"),
        ("imaps://host/INBOX", "names no user"),
        ("pop3://u:p@host/", "scheme"),
        ("imaps://u:p@host/INBOX?auth=kerberos", "auth must be"),
        ("imaps://u:p@host/INBOX?folder=x", "unknown option"),
    ],
)
def test_bad_imap_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ImapConfig.from_url(url)


def test_smtp_xoauth2_needs_the_user() -> None:
    assert SmtpConfig.from_url("smtp://a%40b.se@h:587?starttls=true&auth=xoauth2").auth == "xoauth2"
    with pytest.raises(ValueError, match="needs the user name"):
        SmtpConfig.from_url("smtp://h:587?auth=xoauth2")


def test_xoauth2_without_the_oauth_settings_stops_start_up_naming_them() -> None:
    env = {"SAMVERKAN_IMAP_URL": "imaps://svar%40kommun.se@h/INBOX?auth=xoauth2"}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "SAMVERKAN_IMAP_URL" in message
    assert "SAMVERKAN_OAUTH_TOKEN_URL" in message and "SAMVERKAN_OAUTH_CLIENT_SECRET" in message
    assert load_settings({**env, **OAUTH}).imap is not None


def test_the_secret_is_not_echoed_in_errors() -> None:
    env = {**OAUTH, "SAMVERKAN_IMAP_URL": "imap://svar:hemligt-losen@h/INBOX"}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert "hemligt-losen" not in str(caught.value)
    assert "clear text" in str(caught.value)


def test_the_reply_mailbox_must_be_an_address() -> None:
    with pytest.raises(SettingsError, match="SAMVERKAN_REPLY_MAILBOX"):
        load_settings({"SAMVERKAN_REPLY_MAILBOX": "svar"})
    assert load_settings({"SAMVERKAN_REPLY_MAILBOX": "svar@kommun.se"}).reply_mailbox == (
        "svar@kommun.se"
    )
