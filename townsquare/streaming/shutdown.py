"""Closing open streams as soon as the server is asked to stop.

A server finishes open responses before it runs the application's shutdown, and a stream never
finishes by itself, so waiting for the shutdown hook would hold the server until its graceful
timeout. The hub therefore also listens for SIGTERM and SIGINT, closes every stream, and hands
the signal on to the handler that was there before (the server's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalHook:
    def __init__(self, on_signal: Callable[[], None]) -> None:
        self.on_signal = on_signal
        self._previous: dict[signal.Signals, Any] = {}
        self._installed: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue  # nobody is waiting for it to stop gracefully

            def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(self.on_signal)
                previous(number, frame)

            signal.signal(signum, handler)
            self._previous[signum] = previous
            self._installed[signum] = handler

    def remove(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            # Leave alone a handler someone installed after ours.
            if signal.getsignal(signum) is self._installed.get(signum):
                signal.signal(signum, previous)
        self._previous.clear()
        self._installed.clear()
