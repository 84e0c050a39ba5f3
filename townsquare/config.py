"""One typed settings object, read from ``TOWNSQUARE_*`` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting, with its help text. ``docs/CONFIGURATION.md`` documents each one."""

    model_config = SettingsConfigDict(env_prefix="TOWNSQUARE_", extra="ignore")

    domain: str = Field(
        "127.0.0.1:8000", description="Public host name (and port) of the instance."
    )
    base_url: str = Field("", description="Public base URL; derived from the domain when empty.")
    instance_title: str = Field("Townsquare", description="Title shown by the instance API.")
    instance_description: str = Field(
        "A social platform that stays up.", description="Description shown by the instance API."
    )
    contact_email: str = Field("", description="Contact address shown by the instance API.")
    data_dir: Path = Field(Path("var"), description="Where the SQLite database and media live.")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL. Empty means SQLite in data_dir; "
        "postgresql+asyncpg://... selects PostgreSQL.",
    )
    database_pool_size: int = Field(10, description="Connections per worker (PostgreSQL).")
    database_read_url: str = Field(
        "",
        description="SQLAlchemy URL for reads that may be served by a standby (e.g. HAProxy "
        "routing to PostgreSQL standbys); empty means reads use database_url.",
    )
    database_failover_wait: float = Field(
        30.0,
        description="Seconds a request that is safe to replay (a read, or a write with an "
        "Idempotency-Key) waits for the database to come back after a failover before failing.",
    )
    registrations_open: bool = Field(True, description="Whether anyone may sign up.")
    max_status_chars: int = Field(500, description="Longest status text, in characters.")
    max_media_attachments: int = Field(4, description="Most images per status.")
    max_image_bytes: int = Field(16 * 1024 * 1024, description="Largest image upload, in bytes.")
    max_image_pixels: int = Field(
        40_000_000, description="Largest image upload, in pixels (guards decompression bombs)."
    )
    poll_max_options: int = Field(4, description="Most options in a poll.")
    fanout_pull_threshold: int = Field(
        5_000,
        description="Authors with at least this many followers are pulled into home "
        "timelines at read time instead of being fanned out on write.",
    )
    job_workers: int = Field(2, description="Background job runners per worker process.")
    entity_cache_size: int = Field(
        20_000,
        description="Rendered statuses kept per worker process for timelines (accounts: half "
        "as many); 0 turns the cache off.",
    )
    secret_key: str = Field("", description="Signing key; generated into data_dir when empty.")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    redis_url: str = Field("", description="Redis URL for shared counters and pub/sub (cluster).")

    # Rate limits (the shield's first layer). Each is "<count>/<period>", period in limits'
    # syntax (second, minute, 5 minutes, hour ...).
    rate_limits_enabled: bool = Field(True, description="Whether rate limits are enforced.")
    rate_limit_authenticated: str = Field(
        "1500/5 minutes", description="Requests per access token."
    )
    rate_limit_anonymous: str = Field(
        "600/5 minutes", description="Requests per client address without a token."
    )
    rate_limit_login: str = Field(
        "25/5 minutes", description="Login and token attempts per client address."
    )
    rate_limit_registration: str = Field("5/30 minutes", description="Sign-ups per client address.")
    rate_limit_posting: str = Field("300/3 hours", description="Statuses posted per token.")
    rate_limit_media: str = Field("60/30 minutes", description="Media uploads per token.")
    rate_limit_search: str = Field("120/5 minutes", description="Searches per token or address.")

    # Streaming API (WebSocket and server-sent events).
    streaming_poll_interval: float = Field(
        0.075, description="Seconds between two reads of new stream events by each worker."
    )
    streaming_event_retention: float = Field(
        300.0, description="Seconds stream events are kept before they are pruned."
    )
    streaming_heartbeat: float = Field(
        30.0, description="Seconds of quiet after which an event stream sends a heartbeat."
    )
    streaming_queue_limit: int = Field(
        500, description="Messages waiting for one connection before it is dropped as too slow."
    )
    streaming_max_connections_per_account: int = Field(
        20, description="Open streaming connections per account, per worker process."
    )
    streaming_max_connections_per_address: int = Field(
        100, description="Open streaming connections per client address, per worker process."
    )
    streaming_max_subscriptions: int = Field(
        50, description="Streams one WebSocket connection may subscribe to."
    )
    streaming_hidden_refresh: float = Field(
        5.0, description="Seconds a viewer's blocks and mutes are cached by the streaming API."
    )

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'townsquare.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.domain}").rstrip("/")

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    # ---------------------------------------------------------------------------------------
    # The shield: admission control, under-attack mode, proof-of-work passes, connection
    # limits. Everything below belongs to townsquare/shield/.
    # ---------------------------------------------------------------------------------------
    shield_enabled: bool = Field(
        True, description="Whether admission control and under-attack mode are active."
    )
    shield_initial_concurrency: int = Field(
        32, description="Requests served at once per worker before latency has been measured."
    )
    # A worker's requests wait on the database and on threads; at fewer than 16 at once its
    # loop idles while the queue holds people (measured: p99 303-485 ms at 4, 132-142 at 16).
    shield_min_concurrency: int = Field(
        16, description="Fewest requests served at once per worker, however slow they get."
    )
    shield_max_concurrency: int = Field(
        512, description="Most requests served at once per worker, however fast they are."
    )
    shield_latency_tolerance: float = Field(
        0.5,
        description="How far (as a fraction) latency may rise above the measured minimum "
        "before the concurrency limit shrinks.",
    )
    shield_min_rtt_window: float = Field(
        30.0, description="Seconds over which the minimum latency is measured afresh."
    )
    shield_queue_deadline_trusted: float = Field(
        2.0, description="Seconds a request with a token or session may wait for a slot."
    )
    shield_queue_deadline_pass: float = Field(
        1.0, description="Seconds an anonymous request with a proof-of-work pass may wait."
    )
    shield_queue_deadline_anonymous: float = Field(
        0.5, description="Seconds any other request may wait for a slot before it is shed."
    )
    shield_queue_max: int = Field(
        2_000, description="Most requests waiting per priority class and worker."
    )
    shield_attack_mode: str = Field(
        "auto",
        description="Under-attack mode: auto (switches itself on and off), on or off. "
        "`townsquare shield on|off|auto` overrides this at run time.",
    )
    shield_attack_window: float = Field(
        3.0, description="Seconds of traffic judged together to switch under-attack mode."
    )
    shield_attack_shed_ratio: float = Field(
        0.05,
        description="Share of requests shed or challenged in a window that turns "
        "under-attack mode on.",
    )
    shield_attack_min_requests: int = Field(
        50, description="Fewest shed or challenged requests in a window that count as an attack."
    )
    shield_attack_queue_seconds: float = Field(
        0.25, description="Mean wait for a slot, in seconds, that turns under-attack mode on."
    )
    shield_attack_quiet_period: float = Field(
        120.0, description="Seconds without attack signs before under-attack mode turns off."
    )
    shield_pow_difficulty: int = Field(
        15, description="Leading zero bits a proof-of-work solution needs when an attack starts."
    )
    shield_pow_max_extra_difficulty: int = Field(
        2,
        description="Bits added to the difficulty as the attack grows stronger (each doubles "
        "the work; a reader on a slow device must still pass within about 2 seconds).",
    )
    shield_challenge_lifetime: float = Field(
        120.0, description="Seconds a proof-of-work challenge may be solved in."
    )
    shield_pass_lifetime: float = Field(
        900.0, description="Seconds a proof-of-work pass is accepted."
    )
    shield_pass_rate_limit: str = Field(
        "300/5 minutes", description="Requests one proof-of-work pass allows."
    )
    shield_unknown_token_rate_limit: str = Field(
        "120/minute",
        description="Requests with not-yet-validated tokens per address prefix during an "
        "attack; beyond it such requests need a pass like anonymous ones.",
    )
    shield_trusted_proxies: str = Field(
        "",
        description="Comma-separated networks of reverse proxies whose X-Forwarded-For is "
        "believed (e.g. 127.0.0.1/32,10.0.0.0/8); empty: the connecting address is the client.",
    )
    shield_metrics_public: bool = Field(
        False, description="Whether /metrics answers any address (else loopback only)."
    )
    rate_limit_anonymous_prefix: str = Field(
        "3000/5 minutes",
        description="Requests without a token per address prefix (/24 IPv4, /48 IPv6).",
    )
    rate_limit_login_prefix: str = Field(
        "100/5 minutes", description="Login and token attempts per address prefix."
    )
    rate_limit_login_account: str = Field(
        "10/5 minutes",
        description="Password attempts per account (or per unknown login name), counted "
        "before the password hash is computed.",
    )
    rate_limit_streaming: str = Field(
        "120/minute",
        description="Streaming connections (WebSocket or event stream) opened per token "
        "(the web app opens one per page it shows).",
    )
    rate_limit_streaming_address: str = Field(
        "600/minute",
        description="Streaming connections opened per client address, whatever the token "
        "(higher than per token: many people can share one address).",
    )
    shield_cache_ttl: float = Field(
        2.0,
        description="Seconds anonymous public reads (timelines, profiles, statuses) are "
        "served from the worker's cache; 0 turns the cache off.",
    )
    shield_password_hash_slots: int = Field(
        2,
        description="Password hashes computed at once per worker; sign-ins beyond them (and "
        "a short queue) get 503 with Retry-After.",
    )
    shield_cache_max_entries: int = Field(
        4_096, description="Most anonymous responses kept in each worker's cache."
    )
    server_header_timeout: float = Field(
        10.0,
        description="Seconds a connection has to send a complete request head, from its "
        "start or the end of the previous response (guards against slowloris).",
    )
    server_body_timeout: float = Field(
        10.0, description="Seconds of grace to start sending a request body."
    )
    server_body_min_rate: int = Field(
        2_048, description="Slowest accepted request body upload, in bytes per second."
    )
    server_max_header_bytes: int = Field(
        32_768, description="Largest request head (request line and headers), in bytes."
    )
    server_max_body_bytes: int = Field(
        262_144,
        description="Largest request body, in bytes, except media uploads (limited by "
        "max_image_bytes); larger ones are refused with 413.",
    )
    server_max_connections_per_address: int = Field(
        64, description="Open connections per client address and worker; more are closed."
    )
    server_max_connections: int = Field(
        4_096, description="Open connections per worker before new ones are answered with 503."
    )
    server_keep_alive: float = Field(
        5.0, description="Seconds an idle keep-alive connection stays open."
    )
    server_connection_rate_per_address: str = Field(
        "60/10 seconds",
        description="New connections per client address and worker, counted when accepted; "
        "more get 429 and are closed before their request is read.",
    )
    server_connection_rate_per_prefix: str = Field(
        "300/10 seconds",
        description="New connections per address prefix (/24 IPv4, /48 IPv6) and worker.",
    )
    server_unseen_token_rate: str = Field(
        "5/10 seconds",
        description="WebSocket handshakes with a token this worker has not validated yet, per "
        "client address and worker (four times as many per address prefix; ten times for an "
        "address with a good recent history); more get 429 before the token is looked up.",
    )
    server_lag_threshold: float = Field(
        0.05,
        description="Event-loop lag (seconds, smoothed) beyond which a worker answers 503 to "
        "new connections and requests from addresses with no recently valid token, session "
        "or pass; 0 turns it off.",
    )
    server_known_addresses: int = Field(
        65_536,
        description="Slots in the table of client addresses with a recently valid token, "
        "session or pass, shared by the workers in data_dir (served first while a worker's "
        "event loop lags).",
    )
    server_addresses_per_token: int = Field(
        4,
        description="Addresses one token or session may come from and still count as a good "
        "history for them; a token seen from more vouches for none.",
    )

    # Live audio rooms (townsquare/rooms/, docs/ROOMS.md).
    rooms_listener_buffer_bytes: int = Field(
        16_384,
        description="Bytes of audio waiting for one room listener; beyond it whole Clusters "
        "are skipped for that listener.",
    )
    rooms_listener_max_lag: float = Field(
        8.0,
        description="Seconds a room listener may stay over its buffer before it is cut off.",
    )
    rooms_join_rate: float = Field(
        1_000.0,
        description="Room listening handshakes admitted per second and worker; more are "
        "answered 503 with Retry-After (0 admits all).",
    )
    rooms_segment_seconds: float = Field(
        2.0, description="Approximate length of the HTTP segments a room's tracks are cut into."
    )
