"""Which writes empty the token cache: those that can change what a token resolves to."""

from __future__ import annotations

import pytest

from townsquare.db.engine import is_auth_write


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET suspended_at=? WHERE accounts.id = ?",
        "UPDATE accounts SET role=? WHERE accounts.id = ?",
        "UPDATE accounts SET statuses_count=?, role=? WHERE accounts.id = ?",
        'UPDATE "accounts" SET locked=$1::BOOLEAN WHERE accounts.id = $2::BIGINT',
        "DELETE FROM accounts WHERE accounts.id = ?",
        "UPDATE oauth_tokens SET revoked_at=? WHERE oauth_tokens.id = ?",
        "DELETE FROM oauth_apps WHERE oauth_apps.id = ?",
    ],
)
def test_a_change_to_an_account_token_or_app_counts(statement: str) -> None:
    assert is_auth_write(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET statuses_count=(accounts.statuses_count + ?), "
        "last_status_at=? WHERE accounts.id = ?",
        "UPDATE accounts SET followers_count=(CASE WHEN (accounts.followers_count > $1::INTEGER) "
        "THEN accounts.followers_count - $2::INTEGER ELSE $3::INTEGER END) "
        "WHERE accounts.id = $4::BIGINT",
        "UPDATE statuses SET favourites_count=? WHERE statuses.id = ?",
        "INSERT INTO oauth_tokens (id) VALUES (?)",
        "SELECT accounts.id FROM accounts",
    ],
)
def test_counters_and_other_tables_do_not(statement: str) -> None:
    assert not is_auth_write(statement)
