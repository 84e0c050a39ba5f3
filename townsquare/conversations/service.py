"""Direct-message conversations: each participant's view of a thread of ``direct`` statuses."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.errors import not_found
from townsquare.api.pagination import Page
from townsquare.conversations.models import ConversationMember
from townsquare.graph.service import is_blocked_either_way
from townsquare.graph.sql import upsert
from townsquare.statuses.models import Mention, Status
from townsquare.streaming.publish import publish


def conversation_id_of(status: Status) -> int:
    return status.thread_id or status.id


async def record_direct_status(
    session: AsyncSession, status: Status, participant_ids: Iterable[int]
) -> None:
    """Bring the conversation of a new direct status to the top for its author and everyone
    it mentions: unread for the others, read for the author, shown again if it was hidden."""
    conversation_id = conversation_id_of(status)
    members = [status.account_id]
    for participant_id in dict.fromkeys(participant_ids):
        if participant_id == status.account_id:
            continue
        # Across a block the status is invisible, so the conversation must not appear either.
        if await is_blocked_either_way(session, participant_id, status.account_id):
            continue
        members.append(participant_id)

    for account_id in members:
        unread = account_id != status.account_id
        await upsert(
            session,
            ConversationMember,
            {
                "conversation_id": conversation_id,
                "account_id": account_id,
                "last_status_id": status.id,
                "unread": unread,
                "hidden": False,
            },
            ["conversation_id", "account_id"],
            {"last_status_id": status.id, "unread": unread, "hidden": False},
        )
        publish(
            session,
            f"direct:{account_id}",
            "conversation",
            {"conversation_id": conversation_id, "account_id": account_id},
        )


async def forget_direct_status(session: AsyncSession, status: Status) -> None:
    """Call before deleting a direct status: conversations it ended fall back to the message
    before it that each participant could see, or disappear when there is none."""
    conversation_id = conversation_id_of(status)
    members = await session.scalars(
        select(ConversationMember).where(
            ConversationMember.conversation_id == conversation_id,
            ConversationMember.last_status_id == status.id,
        )
    )
    for member in members.all():
        previous = await session.scalar(
            select(Status.id)
            .where(
                or_(Status.thread_id == conversation_id, Status.id == conversation_id),
                Status.visibility == "direct",
                Status.id != status.id,
                or_(
                    Status.account_id == member.account_id,
                    exists().where(
                        Mention.status_id == Status.id, Mention.account_id == member.account_id
                    ),
                ),
            )
            .order_by(Status.id.desc())
            .limit(1)
        )
        if previous is None:
            await session.delete(member)
        else:
            member.last_status_id = previous
    await session.flush()


async def list_conversations(
    session: AsyncSession, account_id: int, page: Page
) -> list[ConversationMember]:
    """One page of the account's visible conversations, most recent activity first."""
    query = select(ConversationMember).where(
        ConversationMember.account_id == account_id, ConversationMember.hidden.is_(False)
    )
    rows = await session.scalars(page.apply(query, ConversationMember.last_status_id))
    return page.finish(rows.all())


async def find_membership(
    session: AsyncSession, account_id: int, conversation_id: int
) -> ConversationMember:
    """The caller's own row; anyone else's conversation does not exist for them."""
    member = await session.get(ConversationMember, (conversation_id, account_id))
    if member is None or member.hidden:
        raise not_found("Conversation")
    return member


async def hide_conversation(session: AsyncSession, account_id: int, conversation_id: int) -> None:
    """Remove the conversation from the caller's list; a new message brings it back."""
    await find_membership(session, account_id, conversation_id)
    await session.execute(
        update(ConversationMember)
        .where(
            ConversationMember.conversation_id == conversation_id,
            ConversationMember.account_id == account_id,
        )
        .values(hidden=True, unread=False)
        .execution_options(synchronize_session=False)
    )


async def mark_read(
    session: AsyncSession, account_id: int, conversation_id: int
) -> ConversationMember:
    member = await find_membership(session, account_id, conversation_id)
    member.unread = False
    return member
