"""The benchmark's speaker: a 32 kbit/s WebM/Opus stream sent in 250 ms chunks, in real time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from websockets.asyncio.client import connect

from tests.rooms.webm import opus_webm
from townsquare.rooms import frames
from townsquare.rooms.ebml import ClusterSplitter

CHUNK_SECONDS = 0.25


@dataclass
class Stream:
    """A WebM/Opus stream, its 250 ms chunks, and which chunk completes which Cluster."""

    data: bytes
    chunks: list[bytes]
    clusters: list[bytes]
    init: bytes
    completes: dict[int, list[int]]  # chunk index → indexes of the Clusters it completes
    index: dict[bytes, int]

    @classmethod
    def make(cls, seconds: float) -> Stream:
        data = opus_webm(seconds, bitrate=32_000, cluster_ms=250)
        per_chunk = max(1, int(len(data) / seconds * CHUNK_SECONDS))
        chunks = [data[i : i + per_chunk] for i in range(0, len(data), per_chunk)]
        splitter = ClusterSplitter()
        clusters: list[bytes] = []
        completes: dict[int, list[int]] = {}
        for number, chunk in enumerate(chunks):
            done = splitter.feed(chunk)
            completes[number] = list(range(len(clusters), len(clusters) + len(done)))
            clusters += done
        assert splitter.init_segment is not None
        return cls(
            data,
            chunks,
            clusters,
            splitter.init_segment,
            completes,
            {cluster: i for i, cluster in enumerate(clusters)},
        )


async def speak(url: str, stream: Stream, *, framed: bool) -> dict[int, float]:
    """Send the stream in real time; returns when each Cluster's last byte was sent.

    ``framed``: send ready-made relay frames (for the baseline, which parses nothing)."""
    sent_at: dict[int, float] = {}
    async with connect(url, max_size=None, compression=None) as speaker:
        if framed:
            await speaker.send(frames.media_frame(frames.INIT, 1, stream.init))
        start = time.monotonic()
        for number, chunk in enumerate(stream.chunks):
            delay = start + number * CHUNK_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            if framed:
                for index in stream.completes[number]:
                    await speaker.send(
                        frames.media_frame(frames.CLUSTER, 1, stream.clusters[index])
                    )
            else:
                await speaker.send(chunk)
            for index in stream.completes[number]:
                sent_at[index] = now
        await asyncio.sleep(1.0)  # let the last Clusters drain before the track ends
    return sent_at
