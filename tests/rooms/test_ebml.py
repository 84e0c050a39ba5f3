"""Cutting a real WebM/Opus stream into its initialisation segment and whole Clusters."""

from __future__ import annotations

import random

import pytest

from tests.rooms.webm import decoded_seconds, opus_webm
from townsquare.rooms.ebml import (
    CLUSTER,
    UNKNOWN_SIZE,
    ClusterSplitter,
    EbmlError,
    cluster_timecode,
    read_id,
    read_size,
)


@pytest.fixture(scope="module")
def stream() -> bytes:
    return opus_webm(4.0)


def whole(stream: bytes) -> tuple[bytes, list[bytes]]:
    splitter = ClusterSplitter()
    clusters = splitter.feed(stream)
    assert splitter.init_segment is not None
    return splitter.init_segment, clusters


def test_clusters_are_cut_whole_from_any_chunking(stream: bytes) -> None:
    init, clusters = whole(stream)
    assert len(clusters) >= 12  # ~250 ms each
    # The pieces put back together are the stream itself, past the Segment's size field.
    assert init + b"".join(clusters) == stream
    assert all(read_id(cluster, 0) == (CLUSTER, 4) for cluster in clusters)
    times = [cluster_timecode(cluster) for cluster in clusters]
    assert times == sorted(times) and times[0] == 0

    chunking = random.Random(7)
    for _ in range(5):
        splitter, received, position = ClusterSplitter(), [], 0
        while position < len(stream):
            size = chunking.randint(1, 900)
            received += splitter.feed(stream[position : position + size])
            position += size
        assert received == clusters
        assert splitter.init_segment == init
        assert splitter.buffered == 0


def test_a_late_joiner_plays_from_any_cluster(stream: bytes) -> None:
    init, clusters = whole(stream)
    late = init + b"".join(clusters[5:])
    assert decoded_seconds(late) == pytest.approx(
        decoded_seconds(stream) - sum(decoded_seconds(init + c) for c in clusters[:5]), abs=0.05
    )


def unknown_size_clusters(stream: bytes) -> bytes:
    """The same stream as a browser's MediaRecorder writes it: Clusters of unknown size."""
    init, clusters = whole(stream)
    rewritten = bytearray(init)
    for cluster in clusters:
        sized = read_size(cluster, 4)
        assert sized is not None
        rewritten += cluster[:4] + b"\x01\xff\xff\xff\xff\xff\xff\xff" + cluster[4 + sized[1] :]
    return bytes(rewritten)


def test_unknown_size_clusters_are_closed_at_each_chunk(stream: bytes) -> None:
    browser = unknown_size_clusters(stream)
    init, clusters = whole(stream)
    splitter, pieces = ClusterSplitter(), []
    for position in range(0, len(browser), 1000):
        pieces += splitter.feed(browser[position : position + 1000])
    assert splitter.init_segment == init
    # Pieces end where chunks end, long before the next Cluster starts.
    assert len(pieces) > len(clusters)
    for piece in pieces:
        sized = read_size(piece, 4)
        assert sized is not None and sized[0] != UNKNOWN_SIZE
        assert len(piece) == 4 + sized[1] + sized[0]
    # Nothing is lost or reordered: the pieces decode to the whole stream.
    assert decoded_seconds(init + b"".join(pieces)) == decoded_seconds(stream)


def test_what_is_not_webm_is_refused() -> None:
    with pytest.raises(EbmlError):
        ClusterSplitter().feed(b"RIFF\x00\x00\x00\x00WAVEfmt " * 4)


def test_an_oversized_element_is_refused_before_it_is_buffered(stream: bytes) -> None:
    init, clusters = whole(stream)
    splitter = ClusterSplitter(max_element=100)
    with pytest.raises(EbmlError):
        splitter.feed(init + clusters[0])
