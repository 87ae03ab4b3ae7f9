"""Typed settings: environment ``RTCC_*`` plus an optional TOML file.

Every field has a description with units and bounds; unknown keys are
rejected; placeholder secrets are refused outside development mode.

Sources, highest priority first: constructor arguments, environment variables
(``RTCC_<SECTION>__<FIELD>``, e.g. ``RTCC_DATABASE__URL``), the TOML file named
by ``RTCC_CONFIG`` (or passed to :func:`load_settings`), then defaults.
"""

from __future__ import annotations

import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rtcc.errors import ConfigError

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "password", "dev"})


class Mode(StrEnum):
    """How strict the center is about secrets and defaults."""

    development = "development"
    production = "production"


class Section(BaseModel):
    """Base of every settings section: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8470, ge=0, le=65535, description="TCP port of the HTTP server (0: any free port).")
    public_url: str | None = Field(
        None, description="Address printed for people to open; defaults to http://host:port/."
    )

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("give the address people open, http(s)://host[:port]/")
        return v

    max_request_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest request body accepted, in bytes; larger bodies get 413.",
    )
    max_upload_bytes: int = Field(
        268_435_456,
        ge=1024,
        le=17_179_869_184,
        description=(
            "Largest body for file uploads (footage clips, camera images, hotlist and outcome imports); "
            "other requests keep max_request_bytes."
        ),
    )
    max_ingest_batch: int = Field(1000, ge=1, le=100_000, description="Most events in one ingest request.")
    max_event_age_s: float = Field(
        7 * 86400.0,
        ge=60,
        le=366 * 86400.0,
        description=(
            "Oldest device event (pulse, heartbeat, plate-camera image) ingest accepts, in seconds before "
            "now; older ones are refused and the device keeps them in its refused/ folder."
        ),
    )
    device_offline_after_s: float | None = Field(
        None,
        gt=0,
        le=86400,
        description=(
            "A device with no heartbeat for this long (s) is marked offline, once. Unset: 60 s, or three "
            "heartbeats of the simulated city plus 5 s when it runs (sim.heartbeat_s)."
        ),
    )

    shutdown_grace_s: int = Field(
        10,
        ge=1,
        le=3600,
        description=(
            "On stop, how long open HTTP requests and WebSocket sessions may take to finish before "
            "they are cancelled, and then how long the processors may take to handle what the "
            "in-process bus still holds (so a stop always ends, and what was accepted is stored)."
        ),
    )

    def offline_after_s(self, sim: SimSettings) -> float:
        """The heartbeat silence after which a device is offline (:attr:`device_offline_after_s`)."""
        if self.device_offline_after_s is not None:
            return self.device_offline_after_s
        return 3 * sim.heartbeat_s + 5 if sim.enabled else 60.0


class DatabaseSettings(Section):
    url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL. Default: SQLite file rtcc.db in data_dir. Production: "
            "postgresql+psycopg://user:pass@host/db with PostGIS installed."
        ),
    )
    pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connections per process.")
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")

    @field_validator("url")
    @classmethod
    def _engine(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
            raise ValueError(
                "the center runs on PostgreSQL (postgresql+psycopg://user:pass@host/db) or SQLite "
                "(sqlite:///path/rtcc.db)"
            )
        return v


class BusSettings(Section):
    engine: Literal["memory", "nats"] = Field(
        "memory", description="memory: in-process asyncio bus; nats: NATS JetStream."
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s), comma-separated.")

    @field_validator("nats_url")
    @classmethod
    def _nats(cls, v: str) -> str:
        bad = [u for u in (p.strip() for p in v.split(",")) if not re.match(r"^(nats|tls|ws|wss)://\S+$", u)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a NATS server address (nats://host:4222, tls://...)")
        return v

    stream: str = Field("RTCC", min_length=1, description="JetStream stream holding rtcc.> subjects.")
    stream_max_age_s: float = Field(
        7 * 86400.0, gt=0, description="How long JetStream keeps messages, in seconds."
    )
    queue_size: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="In-process engine: messages buffered per subscription before drops are counted.",
    )
    ack_wait_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="JetStream: seconds before an unacked message is redelivered.",
    )
    max_deliver: int = Field(
        5,
        ge=1,
        le=1000,
        description=(
            "Handler failures before a message is given up (and logged). Transient failures (the "
            "database down or locked, the network) do not count: such a message is retried until "
            "they pass (JetStream: until the stream's max age)."
        ),
    )
    retry_delay_max_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="JetStream: longest wait between retries of a message while a failure is transient.",
    )


class SecuritySettings(Section):
    secret_key: str = Field(
        "dev",
        description=(
            "Key for the audit chain's HMAC and other signatures. Must be a real secret "
            "(32+ characters) outside development mode."
        ),
    )
    session_idle_minutes: float = Field(
        30.0, gt=0, le=1440, description="Sessions end after this many idle minutes."
    )
    session_max_hours: float = Field(
        12.0,
        gt=0,
        le=720,
        description="Sessions end this many hours after sign-in however active they are (sign in again).",
    )
    lockout_attempts: int = Field(
        5, ge=1, le=100, description="Failed logins in a row before the account is locked."
    )
    lockout_minutes: float = Field(10.0, gt=0, le=1440, description="Lockout length in minutes.")
    mfa_required: bool = Field(
        False, description="Initial value of the admin switch that requires TOTP MFA for everyone."
    )
    admin_username: str = Field("admin", min_length=1, description="First admin account's name.")
    admin_password: str | None = Field(
        None,
        description="First admin's password; when unset one is generated once and printed.",
    )
    cookie_secure: bool = Field(False, description="Mark the session cookie Secure (set true behind HTTPS).")


class SimSettings(Section):
    enabled: bool = Field(False, description="Run the simulated city inside the center.")
    center_lat: float = Field(33.5186, ge=-90, le=90, description="City centre latitude, degrees.")
    center_lon: float = Field(-86.8104, ge=-180, le=180, description="City centre longitude, degrees.")
    extent_m: float = Field(
        3200.0, ge=200, le=50_000, description="Side of the simulated square area, in metres."
    )
    sensors_per_sq_mile: float = Field(
        17.0, ge=1, le=100, description="Acoustic sensor density (ShotSpotter deploys 15-20)."
    )
    patrol_units: int = Field(12, ge=0, le=5000, description="Patrol units with body cams.")
    heartbeat_s: float = Field(10.0, gt=0, le=3600, description="Seconds between device heartbeats.")
    speedup: float = Field(1.0, gt=0, le=1000, description="Simulated seconds per real second.")
    seed: int = Field(7, description="Random seed; the same seed gives the same city.")


class AcousticSettings(Section):
    temperature_c: float = Field(
        20.0,
        ge=-50,
        le=60,
        description="Air temperature for the speed of sound, °C (while weather_url gives no fresh value).",
    )
    weather_url: str = Field(
        "",
        description=(
            "Weather feed for the speed of sound: aviationweather.gov METAR JSON, api.weather.gov latest "
            "observation, raw METAR text, or a file path (docs/acoustic-weather.md). Empty: temperature_c."
        ),
    )
    weather_poll_s: float = Field(600.0, ge=10, le=86400, description="Seconds between weather feed polls.")
    weather_max_age_s: float = Field(
        10800.0,
        ge=60,
        le=7 * 86400,
        description="An observation older than this many seconds is not used (temperature_c instead).",
    )
    alert_above: float = Field(
        0.85, ge=0, le=1, description="Gunshot confidence at or above which the alert goes out at once."
    )
    review_above: float = Field(
        0.35,
        ge=0,
        le=1,
        description="Confidence from which (up to alert_above) a reviewer decides; below it: stored only.",
    )
    hearing_range_m: float = Field(
        1000.0, gt=0, le=20_000, description="Distance at which a sensor is expected to hear gunfire, metres."
    )
    settle_s: float = Field(
        1.5,
        gt=0,
        le=30,
        description="Seconds after the newest pulse before a bang's window closes at the latest.",
    )
    group_distance_m: float = Field(
        50.0, gt=0, le=5000, description="Located shots this close (metres) join one incident."
    )
    group_gap_s: float = Field(
        10.0, gt=0, le=600, description="…and this close in time (seconds) join one incident."
    )
    levels_spl: bool = Field(
        False,
        description=(
            "Sensors report peak levels in calibrated dB SPL: fold the source level (level plus "
            "spreading and absorption over the distance) into the gunshot confidence. Off for sensors "
            "of unknown calibration; the simulator's sensors report dB SPL."
        ),
    )
    gun_source_db: float = Field(
        137.6,
        ge=80,
        le=200,
        description="Gunfire's source level at 1 m, dB SPL (measured: bench/acoustic_source_level.py).",
    )
    quiet_source_db: float = Field(
        120.0,
        ge=60,
        le=200,
        description="Upper end of quiet impulses (door slam, clap, knock) at 1 m, dB SPL.",
    )
    position_tolerance_m: float = Field(
        50.0,
        gt=0,
        le=5000,
        description=(
            "A pulse whose reported position is further than this (metres) from its sensor's registered "
            "(surveyed) position is located at the registered one, counted and flags the sensor."
        ),
    )
    max_pulse_rate_hz: float = Field(
        20.0,
        gt=0,
        le=10_000,
        description=(
            "A sensor's pulses beyond this sustained rate (per second of the sensor's own clock) are a "
            "flood: counted (acoustic_pulse_rejected{reason=flood}) and not located; they are still stored."
        ),
    )
    max_pulse_burst: int = Field(
        100,
        ge=1,
        le=100_000,
        description=(
            "Pulses a sensor may send at once above max_pulse_rate_hz (a burst of automatic fire with its "
            "echoes) before the flood rule applies."
        ),
    )
    flood_hold_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description=(
            "After a sensor's pulse is counted as a flood, all its pulses are counted so (stored, not "
            "located) until it has sent none over the rate for this many seconds of its clock: its "
            "admitted trickle would otherwise keep one window open that nearby shots join, and delay their "
            "alerts."
        ),
    )
    pulse_holdover_s: float = Field(
        30.0,
        ge=0,
        le=600,
        description=(
            "Seconds a pulse that no located shot used stays available to later pulses of its bang, so a "
            "shot whose sensors deliver far apart (a backlog after an outage, one slow link) is still "
            "located once enough sensors are in."
        ),
    )
    calibration_path: str = Field(
        "",
        max_length=4096,
        description=(
            "Per-sensor calibration file fitted from test fires (rtcc acoustic calibrate): time offsets "
            "and position corrections applied to every pulse before location. Empty: none."
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> AcousticSettings:
        if self.review_above > self.alert_above:
            raise ValueError("acoustic.review_above must not exceed acoustic.alert_above")
        return self


class MapSettings(Section):
    center_lat: float | None = Field(
        None, ge=-90, le=90, description="Where the dashboard map opens, latitude; unset: sim.center_lat."
    )
    center_lon: float | None = Field(
        None, ge=-180, le=180, description="Where the dashboard map opens, longitude; unset: sim.center_lon."
    )
    tile_url: str | None = Field(
        None,
        description=(
            "Base-map tile URL template ({z}/{x}/{y}); unset: the map draws the city's "
            "roads and devices without tiles (works with no internet)."
        ),
    )
    tile_attribution: str = Field("", description="Attribution shown for the tiles.")


class PlatesSettings(Section):
    """Licence-plate reading, hotlist matching and plate search (issue 3)."""

    media_dir: Path | None = Field(
        None, description="Folder of the plate media store (crops, vehicle images). Default: data_dir/media."
    )
    max_image_bytes: int = Field(
        8 * 2**20,
        ge=1024,
        le=256 * 2**20,
        description="Largest camera image accepted by POST /api/v1/plates/images, bytes (larger: 413).",
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=10_000,
        le=178_000_000,
        description=(
            "Largest camera image accepted, in pixels (width x height; larger: 413). At most 178 million: "
            "the image decoder refuses larger ones as decompression bombs."
        ),
    )
    recognition_workers: int = Field(
        2, ge=1, le=64, description="Threads recognizing uploaded camera images (bounded pool)."
    )
    detector_backend: Literal["auto", "onnxruntime", "openvino"] = Field(
        "auto",
        description=(
            "Where the plate reader's networks run: openvino computes the detector in bfloat16 (CPUs "
            "with AMX / AVX-512 BF16; the float detector looks again at uncertain images), the PP-OCR "
            "recognizers in float32, and compiles a camera's frame size on its own after 3 frames; "
            "onnxruntime runs everything in float32; auto: openvino where the CPU has bfloat16."
        ),
    )
    recognition_queue: int = Field(
        16, ge=1, le=10_000, description="Uploads waiting for a recognition thread before 503 is answered."
    )
    lookalike_distance: int = Field(
        0,
        ge=0,
        le=2,
        description=(
            "Edits (insert, delete, substitute) a read may be from a hotlist plate after folding "
            "look-alike characters (0/O/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G) and still hit; 0: look-alikes only. "
            "Each edit multiplies false hits on large lists (1 million entries, 1 edit: about half "
            "of all reads hit)."
        ),
    )
    hotlist_refresh_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between checks of the hotlist version (other processes' imports), s.",
    )
    search_max_results: int = Field(
        1000, ge=1, le=100_000, description="Most plate reads one search, track or co-travel query returns."
    )


class RetentionSettings(Section):
    """How long data is kept and when the purge runs."""

    plate_reads_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="Days plate reads (and their images) that hit nothing are kept; hit and case reads stay.",
    )
    confirmed_hit_days: int = Field(
        365,
        ge=1,
        le=3650,
        description=(
            "Days after its decision a confirmed hit's read and photos are kept when no case links them "
            "(rejected misreads and reads of closed cases follow plate_reads_days)."
        ),
    )
    pulse_audio_days: int = Field(
        30,
        ge=1,
        le=3650,
        description=(
            "Days the audio of acoustic pulses is kept; then it is stripped (timing and level stay), "
            "except the audio of pulses of a gunshot incident (its evidence)."
        ),
    )
    heartbeat_days: int = Field(
        30,
        ge=1,
        le=3650,
        description=(
            "Days device heartbeats are kept in the event log (those of body cams and in-car cameras "
            "are the officers' positions); then they are deleted."
        ),
    )
    footage_days: int = Field(
        90,
        ge=1,
        le=3650,
        description=(
            "Days a clip a camera owner delivered for a footage request is kept; then the clip is "
            "deleted (the request stays, status purged), except while an open case links it."
        ),
    )
    interval_s: float = Field(
        3600.0, ge=1, le=7 * 86400, description="Seconds between scheduled retention runs."
    )


class CamerasSettings(Section):
    """Camera registry, community registration and live view (issue 4)."""

    notifier: Literal["log", "smtp"] = Field(
        "log", description="How owners are notified: log (demo: the message is logged) or smtp (email)."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server for owner notifications.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    smtp_from: str = Field(
        "rtcc@localhost", min_length=3, max_length=254, description="Sender address of owner notifications."
    )
    smtp_starttls: bool = Field(False, description="Use STARTTLS with the SMTP server.")
    service_area: tuple[float, float, float, float] | None = Field(
        None,
        description=(
            "Where community cameras may be registered: (south, west, north, east) in degrees; "
            "unset: anywhere (but not 0,0)."
        ),
    )
    verify_ttl_min: float = Field(
        60.0, gt=0, le=10_080, description="Minutes a verification link or code stays valid."
    )
    verify_max_attempts: int = Field(
        5, ge=1, le=100, description="Wrong verification codes before a registration must start over."
    )
    register_per_ip_per_hour: int = Field(
        10, ge=1, le=100_000, description="Registrations accepted from one client IP address per hour."
    )
    register_per_contact: int = Field(
        3,
        ge=1,
        le=1000,
        description=(
            "Unverified registrations one client IP may have waiting for one email, and verified ones "
            "an email may have waiting for approval."
        ),
    )
    max_range_m: float = Field(
        300.0, gt=0, le=5000, description="Largest camera range accepted, metres (also bounds searches)."
    )
    in_car_max_gap_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="An in-car camera's position is its nearest heartbeat within this many seconds.",
    )
    footage_request_ttl_h: float = Field(
        168.0, gt=0, le=8760, description="Hours an owner has to answer a footage request before it expires."
    )
    max_viewers_per_camera: int = Field(
        16, ge=1, le=1000, description="Most simultaneous live viewers of one camera."
    )
    live_fps: float = Field(5.0, gt=0, le=30, description="Most frames per second sent to live viewers.")
    jpeg_quality: int = Field(75, ge=10, le=100, description="JPEG quality of live frames and snapshots.")
    open_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Seconds to wait for a camera stream to open or yield a frame."
    )
    open_retries: int = Field(
        2, ge=0, le=10, description="Retries (with doubling backoff) when a camera stream fails to open."
    )
    probe_interval_s: float = Field(
        60.0, gt=0, le=86_400, description="Seconds between health probes of each live camera source."
    )


class BodycamSettings(Section):
    """Body-worn cameras: commands, acknowledgements and automatic activation (issue 4)."""

    command_roles: list[Literal["admin", "supervisor"]] = Field(
        ["admin", "supervisor"],
        min_length=1,
        description="Roles that may start or stop a body cam remotely (admin and/or supervisor).",
    )
    ack_timeout_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Seconds a device has to acknowledge the first attempt (doubling per attempt).",
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Delivery attempts before a command's status becomes 'timeout'."
    )
    command_ttl_s: float = Field(
        120.0, ge=5, le=3600, description="Seconds after which devices ignore a command (its expiry)."
    )
    retry_check_s: float = Field(
        0.25, gt=0, le=60, description="Seconds between checks for commands to retry or time out."
    )
    poll_max_wait_s: float = Field(
        30.0, ge=0, le=120, description="Longest wait of the HTTPS command long-poll, seconds."
    )


class OperationsSettings(Section):
    """Alert queue, incident packets, reports, dispatch feeds (issue 5)."""

    packet_radius_m: float = Field(
        300.0,
        gt=0,
        le=5000,
        description="Incident packet: plate reads, units and earlier incidents within, m.",
    )
    packet_window_min: float = Field(
        10.0,
        gt=0,
        le=240,
        description="Incident packet: hotlist-hit reads (listed) and other reads (counted) within ± this "
        "many minutes.",
    )
    packet_history_days: int = Field(
        90, ge=1, le=3650, description="Incident packet: earlier incidents from the last N days."
    )
    packet_debounce_s: float = Field(
        2.0, ge=0, le=300, description="Seconds to gather triggers before a packet is rebuilt."
    )
    packet_live_hours: float = Field(
        6.0, gt=0, le=168, description="Hours a packet keeps being rebuilt on new reads or body-cam status."
    )
    webhook_urls: list[Annotated[str, Field(pattern=r"^https?://[^\s/]+", max_length=2000)]] = Field(
        default_factory=list, max_length=20, description="http(s) URLs new alerts are POSTed to (CAD)."
    )
    webhook_secret: str | None = Field(
        None,
        min_length=16,
        description="HMAC-SHA256 key signing webhook bodies (header X-RTCC-Signature: sha256=<hex>).",
    )
    webhook_max_attempts: int = Field(3, ge=1, le=10, description="Delivery attempts per webhook.")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="Seconds one webhook attempt may take.")
    webhook_backoff_s: float = Field(
        1.0, ge=0, le=60, description="Seconds before the first retry (doubles each retry)."
    )
    cap_sender: str = Field(
        "rtcc@rtcc.local",
        min_length=1,
        max_length=200,
        pattern=r"^[^\s,<&]+$",
        description="CAP 1.2 <sender> of published alerts (no spaces, commas, '<' or '&').",
    )
    export_max_days: int = Field(
        366, ge=1, le=3660, description="Longest time range one export request may cover, days."
    )
    export_max_rows: int = Field(100_000, ge=1, le=10_000_000, description="Most rows in one export.")
    outcome_import_max_rows: int = Field(
        10_000, ge=1, le=1_000_000, description="Most rows in one outcome CSV import."
    )
    transparency_cache_s: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="Seconds the public transparency data (with its audit-chain check) is cached.",
    )


class Settings(BaseSettings):
    """All of the center's settings."""

    model_config = SettingsConfigDict(
        env_prefix="RTCC_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    mode: Mode = Field(Mode.development, description="development or production.")
    data_dir: Path = Field(
        Path("data"), description="Folder for the SQLite file, media and generated credentials."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging threshold.")
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    acoustic: AcousticSettings = Field(default_factory=AcousticSettings)
    map: MapSettings = Field(default_factory=MapSettings)
    plates: PlatesSettings = Field(default_factory=PlatesSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    cameras: CamerasSettings = Field(default_factory=CamerasSettings)
    bodycam: BodycamSettings = Field(default_factory=BodycamSettings)
    operations: OperationsSettings = Field(default_factory=OperationsSettings)

    _toml_file: Path | None = None

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.mode is Mode.production:
            key = self.security.secret_key
            if key.lower() in PLACEHOLDER_SECRETS or len(key) < 32:
                raise ValueError(
                    "security.secret_key is a placeholder or shorter than 32 characters; "
                    "set RTCC_SECURITY__SECRET_KEY to a random secret in production mode"
                )
            pw = self.security.admin_password
            if pw is not None and pw.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("security.admin_password is a placeholder; choose a real password")
        return self

    @property
    def database_url(self) -> str:
        """The effective SQLAlchemy URL (SQLite in data_dir unless configured)."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'rtcc.db').resolve()}"

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url
        host = "127.0.0.1" if self.server.host in ("0.0.0.0", "::") else self.server.host
        return f"http://{host}:{self.server.port}/"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _CURRENT_TOML or os.environ.get("RTCC_CONFIG")
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml)))
        return tuple(sources)


_CURRENT_TOML: Path | None = None


def _line_of(path: Path, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the key at ``loc`` in a TOML file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    section: str | None = None
    keys = [str(p) for p in loc]
    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        m = re.match(r"^\[([^\]]+)\]$", line)
        if m:
            section = m.group(1).strip()
            if len(keys) == 1 and section == keys[0]:
                return i
            continue
        km = re.match(r"^([A-Za-z0-9_\-\"']+)\s*=", line)
        if not km:
            continue
        key = km.group(1).strip("\"'")
        if len(keys) == 1 and section is None and key == keys[0]:
            return i
        if len(keys) >= 2 and section == keys[0] and key == keys[1]:
            return i
    return None


def _env_name(loc: tuple[Any, ...]) -> str | None:
    """The environment variable set for the setting at ``loc`` (``RTCC_SERVER__PORT``), if any."""
    if not loc:
        return None
    wanted = ("RTCC_" + "__".join(str(p) for p in loc)).upper()
    return next((k for k in os.environ if k.upper() == wanted), None)


def describe_errors(exc: ValidationError, toml: Path | None = None) -> list[str]:
    """Turn a pydantic ValidationError into lines naming the key, the line and why."""
    out = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        key = ".".join(str(p) for p in loc) or "(settings)"
        why = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            why = "unknown key (not a setting; check the spelling)"
        where = ""
        env = _env_name(loc)
        if env is not None:  # the environment wins over the file: name where the value came from
            where = f" (environment {env})"
        elif toml is not None and loc:
            line = _line_of(toml, loc)
            if line is not None:
                where = f" ({toml}:{line})"
        out.append(f"{key}{where}: {why}")
    return out


def load_settings(toml: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from the environment and an optional TOML file.

    Raises
    ------
    ConfigError
        With one line per offending key (and its line in the file) when invalid.
    """
    global _CURRENT_TOML
    path = Path(toml) if toml else (Path(os.environ["RTCC_CONFIG"]) if "RTCC_CONFIG" in os.environ else None)
    if path is not None:
        if path.is_dir():
            raise ConfigError(f"settings file {path} is a directory, not a TOML file")
        if not path.exists():
            raise ConfigError(f"settings file {path} does not exist")
        if not path.is_file():
            raise ConfigError(f"settings file {path} is not a regular file")
        try:
            with path.open("rb") as fh:
                tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        # TOML is UTF-8 by definition: tomllib raises UnicodeDecodeError (not a TOML error) otherwise
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); TOML files are UTF-8"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    _CURRENT_TOML = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = describe_errors(exc, path)
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines), details=lines) from exc
    finally:
        _CURRENT_TOML = None


def settings_markdown() -> str:
    """Every setting as a Markdown table (``docs/settings.md`` is this, checked by a test)."""
    lines = [
        "# Settings",
        "",
        "Generated by `rtcc config docs`; a test fails when this file drifts from the code.",
        "Set them in a TOML file (`--config` or `RTCC_CONFIG`) or as environment variables",
        "`RTCC_<SECTION>__<FIELD>` (e.g. `RTCC_DATABASE__URL`). Unknown keys are errors.",
        "",
    ]

    def bounds(info: Any) -> str:
        out = []
        for m in info.metadata:
            for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
                v = getattr(m, attr, None)
                if v is not None:
                    out.append(f"{sym} {v}")
            ml = getattr(m, "min_length", None)
            if ml is not None:
                out.append(f"length ≥ {ml}")
        return ", ".join(out)

    def table(title: str, model: type[BaseModel], prefix: str) -> None:
        lines.extend(
            [f"## {title}", "", "| key | env | default | bounds | description |", "|---|---|---|---|---|"]
        )
        for name, info in model.model_fields.items():
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, Section):
                continue
            default = info.get_default(call_default_factory=True)
            shown = (
                "" if default is None else f"`{default.value if isinstance(default, StrEnum) else default}`"
            )
            key = f"{prefix}{name}"
            env = "RTCC_" + key.replace(".", "__").upper()
            lines.append(f"| `{key}` | `{env}` | {shown} | {bounds(info)} | {info.description or ''} |")
        lines.append("")

    table("Top level", Settings, "")
    for name, info in Settings.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            table(f"[{name}]", ann, f"{name}.")
    return "\n".join(lines)
