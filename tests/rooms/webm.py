"""Real WebM/Opus streams made at test time with PyAV (libopus and FFmpeg's WebM muxer)."""

from __future__ import annotations

import array
import fractions
import io
import math

import av

SAMPLE_RATE = 48_000
FRAME = 960  # 20 ms


def _tone(start: int) -> bytes:
    return array.array(
        "h",
        (
            int(6000 * math.sin(2 * math.pi * 440 * (n + start) / SAMPLE_RATE))
            + int(3000 * math.sin(2 * math.pi * 97 * (n + start) / SAMPLE_RATE))
            for n in range(FRAME)
        ),
    ).tobytes()


# One second of a two-note tone, frame by frame (it repeats seamlessly: 440 and 97 Hz are
# whole numbers of cycles a second).
_TONE = [_tone(index * FRAME) for index in range(SAMPLE_RATE // FRAME)]


def opus_webm(seconds: float, *, bitrate: int = 32_000, cluster_ms: int = 250) -> bytes:
    """A live-style WebM (Segment of unknown size) of a tone, with Clusters of ~``cluster_ms``."""
    output = io.BytesIO()
    container = av.open(
        output, "w", format="webm", options={"cluster_time_limit": str(cluster_ms), "live": "1"}
    )
    stream = container.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
    stream.bit_rate = bitrate
    pts = 0
    for index in range(int(seconds * SAMPLE_RATE / FRAME)):
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(_TONE[index % len(_TONE)])
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        pts += FRAME
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return output.getvalue()


def decoded_seconds(webm: bytes) -> float:
    """How much audio a decoder gets out of ``webm``."""
    with av.open(io.BytesIO(webm), "r", format="webm") as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return samples / SAMPLE_RATE
