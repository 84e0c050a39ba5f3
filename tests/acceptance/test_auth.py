"""Apps, sign-up and both ways of logging in, with Mastodon.py and the HTML login form."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mastodon import Mastodon

from .conftest import CALLBACK, PASSWORD, SCOPES, Instance, Register, unique_username

pytestmark = pytest.mark.acceptance


class FormFields(HTMLParser):
    """The named inputs of the page's forms (hidden CSRF token and OAuth parameters included)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def test_create_app_and_sign_up(instance: Instance, register: Register) -> None:
    api = register("signup")
    me = api.account_verify_credentials()
    assert me.username.startswith("signup")
    assert me.acct == me.username
    assert isinstance(me.id, int | str)
    assert api.app_verify_credentials().name == "acceptance"


def test_password_grant_log_in(instance: Instance, register: Register) -> None:
    username = register("pwd").account_verify_credentials().username
    api = Mastodon(
        client_id=instance.client_id,
        client_secret=instance.client_secret,
        api_base_url=instance.url,
    )
    token = api.log_in(f"{username}@example.org", PASSWORD, scopes=SCOPES, allow_http=True)
    assert token
    assert api.account_verify_credentials().username == username

    wrong = Mastodon(
        client_id=instance.client_id,
        client_secret=instance.client_secret,
        api_base_url=instance.url,
    )
    with pytest.raises(Exception, match="Invalid user name, password"):
        wrong.log_in(username, "not the password", scopes=SCOPES, allow_http=True)


def test_authorization_code_flow_through_the_login_form(
    instance: Instance, register: Register
) -> None:
    username = register("code").account_verify_credentials().username
    api = Mastodon(
        client_id=instance.client_id,
        client_secret=instance.client_secret,
        api_base_url=instance.url,
    )
    url = api.auth_request_url(redirect_uris=CALLBACK, scopes=SCOPES, state="xyz", allow_http=True)
    with httpx.Client(timeout=30) as browser:
        page = browser.get(url)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        form = FormFields()
        form.feed(page.text)
        assert form.fields.get("csrf_token"), "the login form carries a CSRF token"
        fields = {**form.fields, "login": username, "password": PASSWORD, "decision": "allow"}
        answer = browser.post(f"{instance.url}/oauth/authorize", data=fields)
    assert answer.status_code in (302, 303), answer.text[:500]
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    api.log_in(code=query["code"][0], redirect_uri=CALLBACK, scopes=SCOPES, allow_http=True)
    assert api.account_verify_credentials().username == username


def test_login_form_without_the_csrf_token_is_refused(instance: Instance) -> None:
    api = Mastodon(
        client_id=instance.client_id,
        client_secret=instance.client_secret,
        api_base_url=instance.url,
    )
    url = api.auth_request_url(redirect_uris=CALLBACK, scopes=SCOPES, allow_http=True)
    with httpx.Client(timeout=30) as browser:
        form = FormFields()
        form.feed(browser.get(url).text)
        fields = {**form.fields, "login": unique_username("x"), "password": PASSWORD}
        fields.pop("csrf_token", None)
        answer = browser.post(f"{instance.url}/oauth/authorize", data=fields)
    assert answer.status_code in (400, 403, 422)
    assert "location" not in answer.headers
