"""The signal hook closes streams and still hands the signal to the server's own handler."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

from townsquare.streaming.shutdown import SignalHook


async def test_signal_closes_streams_then_reaches_the_previous_handler() -> None:
    seen: list[str] = []

    def server_handler(number: int, frame: FrameType | None) -> None:
        seen.append(f"server {number}")

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        hook = SignalHook(lambda: seen.append("streams closed"))
        hook.install()
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0.01)
        assert seen == [f"server {signal.SIGTERM}", "streams closed"]
        hook.remove()
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, original)
