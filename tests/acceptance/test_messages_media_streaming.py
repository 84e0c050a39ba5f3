"""Direct messages, image attachments and the streaming API through Mastodon.py."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from mastodon import MastodonNotFoundError, StreamListener
from PIL import Image

from .conftest import Instance, Register, eventually

pytestmark = pytest.mark.acceptance


def test_direct_messages_form_a_private_conversation(
    instance: Instance, register: Register
) -> None:
    hal, ida, jon = register("hal"), register("ida"), register("jon")
    ida_me = ida.account_verify_credentials()
    message = hal.status_post(f"@{ida_me.username} the keys are under the mat", visibility="direct")
    assert message.visibility == "direct"
    assert [mention.id for mention in message.mentions] == [ida_me.id]

    conversations = eventually(ida.conversations)
    assert conversations[0].last_status.id == message.id
    assert conversations[0].unread is True
    answer = ida.status_post("Thanks!", in_reply_to_id=message.id)
    assert answer.visibility == "direct"
    assert eventually(lambda: hal.conversations() and hal.conversations()[0].last_status.id)

    # Nobody else sees any of it, by any path.
    assert message.id not in [s.id for s in jon.timeline_public()]
    assert jon.conversations() == []
    with pytest.raises(MastodonNotFoundError):
        jon.status(message.id)


def test_upload_an_image_and_attach_it(instance: Instance, register: Register) -> None:
    kim = register("kim")
    picture = io.BytesIO()
    Image.new("RGB", (320, 200), (40, 120, 200)).save(picture, format="PNG")
    media = kim.media_post(
        picture.getvalue(), mime_type="image/png", description="A blue rectangle"
    )
    assert media.type == "image"
    assert media.description == "A blue rectangle"
    media = eventually(lambda: (m := kim.media(media.id)) and m.url and m)
    status = kim.status_post("A picture", media_ids=[media.id])
    assert [attachment.id for attachment in status.media_attachments] == [media.id]
    attachment = status.media_attachments[0]
    assert attachment.meta.original.width == 320
    assert attachment.url.startswith(instance.url)


class Collector(StreamListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.updates: list[Any] = []
        self.notifications: list[Any] = []
        self.arrived = threading.Event()

    def on_update(self, status: Any) -> None:
        self.updates.append(status)
        self.arrived.set()

    def on_notification(self, notification: Any) -> None:
        self.notifications.append(notification)
        self.arrived.set()


def test_user_stream_delivers_followed_posts_and_notifications(
    instance: Instance, register: Register
) -> None:
    lea, max_ = register("lea"), register("max")
    lea_id = lea.account_verify_credentials().id
    max_.account_follow(lea_id)
    collector = Collector()
    handle = max_.stream_user(collector, run_async=True, timeout=30)
    try:
        eventually(handle.is_receiving, timeout=10)
        post = lea.status_post("Streaming hello")
        eventually(lambda: post.id in [s.id for s in collector.updates], timeout=15)
        lea.account_follow(max_.account_verify_credentials().id)
        eventually(
            lambda: any(
                n.type == "follow" and n.account.id == lea_id for n in collector.notifications
            ),
            timeout=15,
        )
    finally:
        handle.close()
