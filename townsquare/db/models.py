"""Every domain's tables, imported in one place so the metadata (and Alembic) sees them all."""

from townsquare.accounts.models import Account
from townsquare.conversations.models import ConversationMember
from townsquare.db.base import Base
from townsquare.graph.models import Block, Follow, FollowRequest, Mute
from townsquare.instance.models import Filter, FilterKeyword, FilterStatus
from townsquare.jobs.models import Job
from townsquare.media.models import MediaAttachment
from townsquare.moderation.models import Report
from townsquare.notifications.models import Notification
from townsquare.oauth.models import OAuthApp, OAuthCode, OAuthToken
from townsquare.rooms.models import Room, RoomMember
from townsquare.statuses.models import (
    Bookmark,
    Favourite,
    IdempotencyKey,
    Mention,
    Pin,
    Poll,
    PollVote,
    Status,
    StatusEdit,
    StatusTag,
    Tag,
    TagFollow,
)
from townsquare.streaming.models import StreamEvent
from townsquare.timelines.models import HomeFeedEntry, ListMember, Marker, UserList

metadata = Base.metadata

__all__ = [
    "Account",
    "Block",
    "Bookmark",
    "ConversationMember",
    "Favourite",
    "Filter",
    "FilterKeyword",
    "FilterStatus",
    "Follow",
    "FollowRequest",
    "HomeFeedEntry",
    "IdempotencyKey",
    "Job",
    "ListMember",
    "Marker",
    "MediaAttachment",
    "Mention",
    "Mute",
    "Notification",
    "OAuthApp",
    "OAuthCode",
    "OAuthToken",
    "Pin",
    "Poll",
    "PollVote",
    "Report",
    "Room",
    "RoomMember",
    "Status",
    "StatusEdit",
    "StatusTag",
    "StreamEvent",
    "Tag",
    "TagFollow",
    "UserList",
    "metadata",
]
