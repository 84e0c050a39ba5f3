"""The Conversation entity: the other participants, the last status and whether it is unread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity, load_accounts
from townsquare.conversations.models import ConversationMember
from townsquare.privacy import can_view_status, hidden_account_ids
from townsquare.state import AppState
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.models import Mention, Status


async def render_conversations(
    session: AsyncSession, state: AppState, viewer_id: int, members: Sequence[ConversationMember]
) -> list[dict[str, Any]]:
    """Conversations whose last status the viewer can still see, in the order given."""
    status_ids = [member.last_status_id for member in members]
    statuses = {
        status.id: status
        for status in await session.scalars(select(Status).where(Status.id.in_(status_ids)))
    }
    visible = [
        statuses[member.last_status_id]
        for member in members
        if member.last_status_id in statuses
        and await can_view_status(session, viewer_id, statuses[member.last_status_id])
    ]
    rendered = {
        entity["id"]: entity for entity in await render_statuses(session, state, viewer_id, visible)
    }

    # The participants are the last status's author and everyone it mentions.
    participants: dict[int, list[int]] = {status.id: [status.account_id] for status in visible}
    for status_id, account_id in await session.execute(
        select(Mention.status_id, Mention.account_id).where(
            Mention.status_id.in_(list(participants))
        )
    ):
        participants[status_id].append(account_id)
    hidden = await hidden_account_ids(session, viewer_id)
    accounts = await load_accounts(
        session, {account_id for ids in participants.values() for account_id in ids}
    )

    result = []
    for member in members:
        status_entity = rendered.get(str(member.last_status_id))
        if status_entity is None:
            continue
        others = [
            account_entity(accounts[account_id], state.settings)
            for account_id in dict.fromkeys(participants[member.last_status_id])
            if account_id != viewer_id and account_id in accounts and account_id not in hidden
        ]
        result.append(
            {
                "id": str(member.conversation_id),
                "unread": member.unread,
                "accounts": others,
                "last_status": status_entity,
            }
        )
    return result
