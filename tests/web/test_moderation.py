"""The reports queue: a report reaches moderators, who remove a post and suspend its author."""

from __future__ import annotations

from tests.conftest import PersonFactory

from .conftest import PASSWORD, BrowserFactory

JSON = {"Accept": "application/json"}


async def test_report_remove_and_suspend(
    browser: BrowserFactory, make_person: PersonFactory
) -> None:
    await make_person("mod", role="moderator")
    moderator = await browser()
    logged_in = await moderator.submit("/auth/sign_in", {"login": "mod", "password": PASSWORD})
    assert logged_in.status_code == 303
    spammer, carol = await browser("spammer"), await browser("carol")
    posted = await spammer.submit("/statuses", {"status": "buy cheap things"}, headers=JSON)
    status_id = posted.json()["id"]
    thread = await carol.http.get(f"/@spammer/{status_id}")
    assert "Report this post" in thread.text
    account_id = thread.text.split('name="account_id" value="')[1].split('"')[0]
    reported = await carol.submit(
        "/reports", {"account_id": account_id, "status_id": status_id, "comment": "spam"}
    )
    assert reported.status_code == 200 and "Report sent" in reported.text

    queue = await moderator.http.get("/moderation")
    assert "@spammer" in queue.text and "buy cheap things" in queue.text
    removed = await moderator.submit(f"/moderation/statuses/{status_id}/remove", {})
    assert removed.status_code == 303
    assert (await carol.http.get(f"/@spammer/{status_id}")).status_code == 404

    report_id = (await moderator.http.get("/moderation")).text.split('"/moderation/reports/')[1]
    report_id = report_id.split('"')[0]
    suspended = await moderator.submit(f"/moderation/reports/{report_id}", {"action": "suspend"})
    assert suspended.status_code == 303
    assert (await carol.http.get("/@spammer")).status_code == 404
    # The suspended account's browser is logged out.
    assert (await spammer.http.get("/notifications")).status_code == 303
    assert "No open reports" in (await moderator.http.get("/moderation")).text


async def test_a_moderator_cannot_act_on_an_admin(
    browser: BrowserFactory, make_person: PersonFactory
) -> None:
    await make_person("mod", role="moderator")
    await make_person("boss", role="admin")
    moderator = await browser()
    await moderator.submit("/auth/sign_in", {"login": "mod", "password": PASSWORD})
    boss = await browser()
    await boss.submit("/auth/sign_in", {"login": "boss", "password": PASSWORD})
    posted = await boss.submit("/statuses", {"status": "rules are rules"}, headers=JSON)
    status_id = posted.json()["id"]
    refused = await moderator.submit(f"/moderation/statuses/{status_id}/remove", {})
    assert refused.status_code == 403
    assert (await moderator.http.get(f"/@boss/{status_id}")).status_code == 200
