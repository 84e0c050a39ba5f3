"""Direct-message conversations, one row per participant."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db.base import Base


class ConversationMember(Base):
    """A participant's view of a direct conversation (the thread of ``direct`` statuses)."""

    __tablename__ = "conversation_members"

    conversation_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    last_status_id: Mapped[int] = mapped_column(ForeignKey("statuses.id", ondelete="CASCADE"))
    unread: Mapped[bool] = mapped_column(default=True)
    hidden: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (Index("ix_conversation_members_account", "account_id", "last_status_id"),)
