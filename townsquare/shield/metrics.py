"""The shield's counters in Prometheus' text exposition format (``GET /metrics``)."""

from __future__ import annotations

from townsquare.shield import connections
from townsquare.shield.state import PRIORITY_CLASSES, ShieldState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_metrics(shield: ShieldState) -> str:
    metrics = shield.metrics
    lines: list[str] = []
    per_class = (
        ("townsquare_shield_admitted_total", "counter", "Requests admitted.", metrics.admitted),
        ("townsquare_shield_shed_total", "counter", "Requests shed with 503.", metrics.shed),
        (
            "townsquare_shield_queued_seconds_total",
            "counter",
            "Seconds admitted requests waited for a slot.",
            metrics.queued_seconds,
        ),
        (
            "townsquare_shield_waiting",
            "gauge",
            "Requests waiting for a slot now.",
            shield.queue.waiting,
        ),
    )
    for name, kind, help_text, values in per_class:
        _family(lines, name, kind, help_text + " By priority class.")
        for label, value in zip(PRIORITY_CLASSES, values, strict=True):
            lines.append(f'{name}{{class="{label}"}} {_number(value)}')

    mode = shield.mode
    singles = (
        ("townsquare_shield_in_flight", "gauge", "Requests being served.", shield.queue.in_flight),
        (
            "townsquare_shield_concurrency_limit",
            "gauge",
            "Requests this worker serves at once, as adapted to latency.",
            shield.limit.limit,
        ),
        (
            "townsquare_shield_min_latency_seconds",
            "gauge",
            "Reference latency the concurrency limit is adapted to.",
            shield.limit.min_rtt or 0.0,
        ),
        (
            "townsquare_shield_under_attack",
            "gauge",
            "1 while under-attack mode is on.",
            int(mode.active),
        ),
        (
            "townsquare_shield_attack_intensity",
            "gauge",
            "Bits added to the proof-of-work difficulty.",
            mode.intensity,
        ),
        (
            "townsquare_shield_attack_activations_total",
            "counter",
            "Times under-attack mode switched itself on.",
            mode.activations,
        ),
        (
            "townsquare_shield_challenged_total",
            "counter",
            "Anonymous requests refused with a proof-of-work challenge.",
            metrics.challenged + connections.counts.door_challenged,
        ),
        (
            "townsquare_shield_passes_issued_total",
            "counter",
            "Proof-of-work passes issued.",
            metrics.passes_issued,
        ),
        (
            "townsquare_shield_pass_limited_total",
            "counter",
            "Requests refused because their pass was used up.",
            metrics.pass_limited,
        ),
        (
            "townsquare_shield_streaming_refused_total",
            "counter",
            "Streaming connections refused for opening too often.",
            metrics.streaming_refused,
        ),
        (
            "townsquare_shield_cache_hits_total",
            "counter",
            "Anonymous public reads answered from the cache.",
            shield.cache.hits if shield.cache is not None else 0,
        ),
        (
            "townsquare_shield_cache_misses_total",
            "counter",
            "Anonymous public reads the cache could not answer.",
            shield.cache.misses if shield.cache is not None else 0,
        ),
        (
            "townsquare_shield_loop_lag_seconds",
            "gauge",
            "How late this worker's event loop runs (smoothed).",
            connections.loop_lag.lag,
        ),
        (
            "townsquare_shield_loop_lag_peak_seconds",
            "gauge",
            "The largest event-loop lag seen by this worker.",
            connections.loop_lag.peak,
        ),
        (
            "townsquare_shield_known_addresses",
            "gauge",
            "Client addresses remembered with a valid token, session or pass.",
            len(connections.known_addresses),
        ),
        (
            "townsquare_shield_connections_rate_refused_total",
            "counter",
            "Connections refused for opening too often from one address or network.",
            connections.counts.rate_refused,
        ),
        (
            "townsquare_shield_handshakes_refused_total",
            "counter",
            "WebSocket handshakes refused by the connection layer (too many, or a known "
            "invalid token).",
            connections.counts.handshakes_refused,
        ),
        (
            "townsquare_shield_unseen_tokens_refused_total",
            "counter",
            "WebSocket handshakes refused for bringing too many tokens not validated yet "
            "from one address or network (included in handshakes refused).",
            connections.counts.unseen_tokens_refused,
        ),
        (
            "townsquare_shield_door_challenged_total",
            "counter",
            "Anonymous requests challenged by the connection layer before their parse "
            "(included in challenged).",
            connections.counts.door_challenged,
        ),
        (
            "townsquare_shield_lag_refused_total",
            "counter",
            "Connections and requests from unknown addresses refused while the loop lagged.",
            connections.counts.lag_refused_connections + connections.counts.lag_refused_requests,
        ),
    )
    for name, kind, help_text, value in singles:
        _family(lines, name, kind, help_text)
        lines.append(f"{name} {_number(value)}")

    name = "townsquare_rate_limited_total"
    _family(lines, name, "counter", "Requests refused with 429 by cost class.")
    for cost_class, value in sorted(metrics.rate_limited.items()):
        lines.append(f'{name}{{cost_class="{cost_class}"}} {value}')
    return "\n".join(lines) + "\n"
