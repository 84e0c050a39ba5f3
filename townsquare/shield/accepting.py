"""Taking new connections off the kernel's accept queue as fast as they come.

uvloop (libuv) accepts one connection per turn of the event loop. Under a flood a worker's
turn serves hundreds of ready connections and lasts tens of milliseconds, so each worker took
only some tens of connections a second off the kernel's accept queue: the queue, first come
first served, stayed full (4,096) of the flood's connections for the whole attack, and a
signed-in person's new connection (a stream being opened) waited there for seconds before any
worker saw it. So each connection accepted takes up to ``ACCEPT_BATCH`` more from the same
listening socket and hands them to the loop as accepted sockets; each one then meets the
connection layer in ``connection_made`` like any other, and takes more in turn.

The listening socket is found once per address from the accepted connection's local address,
among the process's file descriptors (``/proc/self/fd``; where that does not exist, nothing
more is taken and uvloop's pace stays). It is borrowed for each batch, never kept open: a
server that closes its listening socket is not kept listening.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Callable

# Connections taken off the accept queue after each one accepted.
ACCEPT_BATCH = 64
FD_DIRECTORY = "/proc/self/fd"

Address = object  # a socket's local address, as getsockname() gives it
Place = tuple[int, int, int]  # file descriptor, family, type


def _find_listener(address: Address) -> Place | None:
    """The file descriptor of this process's socket listening on ``address``, if any."""
    try:
        names = os.listdir(FD_DIRECTORY)
    except OSError:
        return None
    for name in names:
        descriptor = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                continue
            borrowed = socket.socket(fileno=descriptor)
        except (OSError, ValueError):
            continue
        try:
            if (
                borrowed.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                and borrowed.getsockname() == address
            ):
                return descriptor, borrowed.family, borrowed.type
        except OSError:
            continue
        finally:
            borrowed.detach()
    return None


class AcceptQueue:
    """Takes waiting connections off the listening sockets of this process."""

    def __init__(self, batch: int = ACCEPT_BATCH) -> None:
        self.batch = batch
        self.taken = 0  # connections taken here rather than by the loop, for tests and metrics
        self._listeners: dict[Address, Place | None] = {}
        self._adopting: set[asyncio.Task[None]] = set()

    def take(self, address: Address) -> list[socket.socket]:
        """Up to ``batch`` connections waiting on the socket listening on ``address``."""
        if self.batch <= 0:
            return []
        if address not in self._listeners:
            self._listeners[address] = _find_listener(address)
        place = self._listeners[address]
        if place is None:
            return []
        descriptor, family, kind = place
        taken: list[socket.socket] = []
        try:
            listener = socket.socket(family, kind, 0, descriptor)
        except OSError:
            self._listeners[address] = None
            return taken
        try:
            if (
                not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                or listener.getsockname() != address
            ):
                self._listeners[address] = None  # closed, and its number reused
                return taken
            listener.setblocking(False)
            while len(taken) < self.batch:
                try:
                    connection, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionAbortedError:
                    continue
                except OSError:
                    break  # out of file descriptors: the loop's own pace until some close
                connection.setblocking(False)
                taken.append(connection)
        except OSError:
            self._listeners[address] = None
        finally:
            listener.detach()
        self.taken += len(taken)
        return taken

    def adopt(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        """Serve ``connection`` on ``loop`` as if the loop had accepted it."""

        async def serve() -> None:
            try:
                await loop.connect_accepted_socket(protocol_factory, connection)
            except OSError:
                connection.close()  # reset before it could be served

        task = loop.create_task(serve())
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    def forget(self) -> None:
        """Look the listening sockets up again (a test server was replaced)."""
        self._listeners.clear()


# One per worker process.
accept_queue = AcceptQueue()
