"""The operator's commands take effect on a running server, seen through Mastodon.py."""

from __future__ import annotations

import pytest
from mastodon import Mastodon, MastodonAPIError, MastodonIllegalArgumentError

from .conftest import PASSWORD, Instance, Register, eventually

pytestmark = pytest.mark.acceptance
STAFF_SCOPES = ["read", "write", "admin:read"]
# A running server may answer reads from what a token resolved to for up to 2 seconds
# (townsquare/api/auth.py, TOKEN_CACHE_SECONDS): a command run in another process is seen
# within that bound, with room for a slow machine.
SEEN_WITHIN = 5.0


def staff_client(instance: Instance, username: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app(
        "staff", scopes=STAFF_SCOPES, api_base_url=instance.url
    )
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=instance.url)
    api.log_in(username, PASSWORD, scopes=STAFF_SCOPES, allow_http=True)
    return api


def test_promote_gives_access_to_moderation(instance: Instance, register: Register) -> None:
    username = register("mod").account_verify_credentials().username
    api = staff_client(instance, username)
    with pytest.raises(MastodonAPIError) as refused:
        api.admin_reports()
    assert "403" in str(refused.value)

    done = instance.command("admin", "promote", username, "moderator")
    assert done.returncode == 0, done.stderr
    assert eventually(lambda: _may_read_reports(api), timeout=SEEN_WITHIN)
    assert api.admin_reports() == []


def _may_read_reports(api: Mastodon) -> bool:
    try:
        api.admin_reports()
    except MastodonAPIError:
        return False
    return True


def test_suspend_locks_the_account_out_and_unsuspend_lets_it_back(
    instance: Instance, register: Register
) -> None:
    api = register("sus")
    username = api.account_verify_credentials().username

    done = instance.command("admin", "suspend", username)
    assert done.returncode == 0, done.stderr
    # Writing is refused at once (writing requests read the account afresh)...
    with pytest.raises(MastodonAPIError):
        api.status_post("still here?")
    # ...and reading within the token cache's bound.
    assert eventually(lambda: _locked_out(api), timeout=SEEN_WITHIN)
    with pytest.raises(MastodonIllegalArgumentError):
        staff_client(instance, username)

    done = instance.command("admin", "unsuspend", username)
    assert done.returncode == 0, done.stderr
    assert staff_client(instance, username).account_verify_credentials().username == username


def _locked_out(api: Mastodon) -> bool:
    try:
        api.account_verify_credentials()
    except MastodonAPIError as refused:
        return "403" in str(refused)
    return False


def test_unknown_accounts_are_reported_plainly(instance: Instance) -> None:
    done = instance.command("admin", "suspend", "nobody_by_that_name")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "not found" in (done.stdout + done.stderr).lower()
