"""Cutting a live WebM stream into its initialisation segment and whole Clusters.

A browser's MediaRecorder hands over chunks on a timer; their boundaries fall anywhere inside
the EBML tree. :class:`ClusterSplitter` is fed those chunks as they come and gives back the
stream's initialisation segment (EBML header, Segment header, Info, Tracks: everything before
the first Cluster) once, then every Cluster as soon as it is complete.

A Cluster of known size is passed on byte for byte. A Cluster of unknown size (what a live
muxer writes, since it cannot know the size in advance) would only end when the next one
starts, seconds later; so at the end of every chunk the blocks it completed are closed into a
Cluster of known size that repeats the open Cluster's Timecode. Each piece is a valid Cluster
that a listener can start from, since every Opus frame is a key frame.
"""

from __future__ import annotations

from dataclasses import dataclass

EBML_HEADER = 0x1A45DFA3
SEGMENT = 0x18538067
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
# Children of a Segment: one of these inside an unknown-size Cluster ends that Cluster.
SEGMENT_CHILDREN = frozenset(
    {
        CLUSTER,
        0x114D9B74,  # SeekHead
        0x1549A966,  # Info
        0x1654AE6B,  # Tracks
        0x1C53BB6B,  # Cues
        0x1941A469,  # Attachments
        0x1043A770,  # Chapters
        0x1254C367,  # Tags
    }
)
UNKNOWN_SIZE = -1
# The Segment's size as sent to listeners: unknown, since they only ever see part of it.
UNKNOWN_SEGMENT_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"
DEFAULT_MAX_ELEMENT = 1 << 20


class EbmlError(ValueError):
    """The bytes are not a WebM stream this relay can carry."""


def read_id(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """The element ID at ``pos`` (marker bit kept, as IDs are written) and its length, or None
    if the bytes end before it does."""
    if pos >= len(data):
        return None
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 4 and not first & mask:
        mask >>= 1
        length += 1
    if length > 4:
        raise EbmlError(f"invalid element ID at byte {pos}")
    if pos + length > len(data):
        return None
    return int.from_bytes(data[pos : pos + length], "big"), length


def read_size(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """The element data size at ``pos`` (:data:`UNKNOWN_SIZE` when all its bits are set) and
    the length of its encoding, or None if the bytes end before it does."""
    if pos >= len(data):
        return None
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise EbmlError(f"invalid element size at byte {pos}")
    if pos + length > len(data):
        return None
    value = int.from_bytes(data[pos : pos + length], "big") & ((1 << (7 * length)) - 1)
    if value == (1 << (7 * length)) - 1:
        return UNKNOWN_SIZE, length
    return value, length


def encode_size(size: int) -> bytes:
    """The shortest EBML encoding of a data size."""
    for length in range(1, 9):
        if size < (1 << (7 * length)) - 1:
            return (size | (1 << (7 * length))).to_bytes(length, "big")
    raise EbmlError("element too large")


def cluster_timecode(cluster: bytes) -> int | None:
    """The Timecode of a complete Cluster, in the stream's timecode units."""
    header = _header(cluster, 0)
    if header is None:
        return None
    _cluster_id, size, pos = header
    end = len(cluster) if size == UNKNOWN_SIZE else min(len(cluster), pos + size)
    while pos < end:
        child = _header(cluster, pos)
        if child is None or child[1] == UNKNOWN_SIZE:
            return None
        child_id, child_size, data_pos = child
        if child_id == TIMECODE:
            return int.from_bytes(cluster[data_pos : data_pos + child_size], "big")
        pos = data_pos + child_size
    return None


def _header(data: bytes | bytearray, pos: int) -> tuple[int, int, int] | None:
    """(id, size, position of the data) of the element at ``pos``, or None if incomplete."""
    found = read_id(data, pos)
    if found is None:
        return None
    element_id, id_length = found
    sized = read_size(data, pos + id_length)
    if sized is None:
        return None
    size, size_length = sized
    return element_id, size, pos + id_length + size_length


@dataclass
class _OpenCluster:
    timecode: bytes = b""
    blocks: bytearray | None = None


class ClusterSplitter:
    """Feed it a WebM stream in chunks of any size; get back whole Clusters."""

    def __init__(self, *, max_element: int = DEFAULT_MAX_ELEMENT) -> None:
        self.max_element = max_element
        self.init_segment: bytes | None = None
        self._buffer = bytearray()
        self._head = bytearray()  # the initialisation segment while it is being read
        self._stage = "ebml"  # ebml → segment → body (→ cluster while one of unknown size is open)
        self._open: _OpenCluster | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete element."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the Clusters they completed, in order.

        After the first Cluster is seen, :attr:`init_segment` holds the initialisation segment.
        Raises :class:`EbmlError` for bytes that are not WebM or elements over ``max_element``.
        """
        self._buffer += chunk
        clusters: list[bytes] = []
        pos = 0
        while True:
            consumed = self._step(pos, clusters)
            if consumed is None:
                break
            pos = consumed
        del self._buffer[:pos]
        if self._open is not None and self._open.blocks:
            clusters.append(self._close_piece(self._open))
        return clusters

    def _step(self, pos: int, clusters: list[bytes]) -> int | None:
        """Read one element at ``pos``; the position after it, or None if more bytes are needed."""
        header = _header(self._buffer, pos)
        if header is None:
            return None
        element_id, size, data_pos = header
        if self._stage == "ebml":
            if element_id != EBML_HEADER:
                raise EbmlError("the stream does not start with an EBML header")
            return self._take_head(pos, data_pos, size)
        if self._stage == "segment":
            if element_id != SEGMENT:
                raise EbmlError("the EBML header is not followed by a Segment")
            self._head += SEGMENT.to_bytes(4, "big") + UNKNOWN_SEGMENT_SIZE
            self._stage = "body"
            return data_pos
        if self._open is not None:
            if element_id in SEGMENT_CHILDREN or element_id == EBML_HEADER:
                # The open Cluster ends where the next top-level element starts.
                if self._open.blocks:
                    clusters.append(self._close_piece(self._open))
                self._open = None
                return pos
            if size == UNKNOWN_SIZE:
                raise EbmlError("an element of unknown size inside a Cluster")
            end = data_pos + size
            self._check_size(size)
            if end > len(self._buffer):
                return None
            if element_id == TIMECODE:
                self._open.timecode = bytes(self._buffer[pos:end])
            elif element_id in (SIMPLE_BLOCK, BLOCK_GROUP):
                if self._open.blocks is None:
                    self._open.blocks = bytearray()
                self._open.blocks += self._buffer[pos:end]
            return end
        if element_id == CLUSTER:
            self._finish_head()
            if size == UNKNOWN_SIZE:
                self._open = _OpenCluster()
                return data_pos
            self._check_size(size)
            end = data_pos + size
            if end > len(self._buffer):
                return None
            clusters.append(bytes(self._buffer[pos:end]))
            return end
        if element_id == EBML_HEADER:
            raise EbmlError("a second stream started inside the first; open a new connection")
        if size == UNKNOWN_SIZE:
            raise EbmlError("a top-level element of unknown size other than a Cluster")
        self._check_size(size)
        end = data_pos + size
        if end > len(self._buffer):
            return None
        if self.init_segment is None:
            self._head += self._buffer[pos:end]
        # Cues, Tags and the like after the first Cluster mean nothing to a live listener.
        return end

    def _take_head(self, pos: int, data_pos: int, size: int) -> int | None:
        if size == UNKNOWN_SIZE:
            raise EbmlError("the EBML header has no size")
        self._check_size(size)
        end = data_pos + size
        if end > len(self._buffer):
            return None
        self._head += self._buffer[pos:end]
        self._stage = "segment"
        return end

    def _finish_head(self) -> None:
        if self.init_segment is None:
            self.init_segment = bytes(self._head)
            self._head.clear()

    def _close_piece(self, open_cluster: _OpenCluster) -> bytes:
        assert open_cluster.blocks is not None
        body = open_cluster.timecode + open_cluster.blocks
        open_cluster.blocks = None
        return CLUSTER.to_bytes(4, "big") + encode_size(len(body)) + body

    def _check_size(self, size: int) -> None:
        if size > self.max_element:
            raise EbmlError(f"an element of {size} bytes is over the limit of {self.max_element}")
