"""The typed, versioned events every room publishes and consumes.

Every event carries an ``event_id`` (so every handler can be idempotent), a
``schema_version``, a ``type`` discriminator, the UTC time it happened
(``occurred_at``) and its ``source`` (a device id or a processor name).

Subjects
--------
Validated events travel on ``rtcc.events.<type>`` (see :func:`subject_for`).
Raw device traffic arrives on ``rtcc.sensors.<device_id>.<kind>`` — the NATS
server's MQTT listener maps MQTT topic ``rtcc/sensors/<id>/<kind>`` onto it —
as a :class:`DeviceEnvelope` carrying the device's key.

Live audience
-------------
``LIVE_ROLES`` says which roles may receive each event type over the
WebSocket; personal data (plate reads, officer positions) is narrower.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Union
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from rtcc.roles import OPERATIONS, STAFF, DeviceType, Role

SCHEMA_VERSION = 1
EVENTS_PREFIX = "rtcc.events"
SENSORS_PREFIX = "rtcc.sensors"


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class Position(BaseModel):
    """A WGS84 position: latitude and longitude in degrees, optional height in metres."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False, description="Latitude, degrees.")
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False, description="Longitude, degrees.")
    alt_m: float | None = Field(
        None, ge=-500.0, le=10_000.0, allow_inf_nan=False, description="Height above WGS84, m."
    )


class Event(BaseModel):
    """Base of all events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    schema_version: int = Field(SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    source: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")

    personal: ClassVar[bool] = False
    """Whether every event of this type carries personal data (reads of it are audited)."""

    sometimes_personal: ClassVar[bool] = False
    """Whether some events of this type carry personal data (see :meth:`is_personal`)."""

    @classmethod
    def may_be_personal(cls) -> bool:
        """Whether a stream of this type can carry personal data (subscribing to it is audited)."""
        return cls.personal or cls.sometimes_personal

    @classmethod
    def is_personal(cls, payload: Mapping[str, Any]) -> bool:
        """Whether this one event, as stored or sent (``payload``), carries personal data.

        Parameters
        ----------
        payload : Mapping
            The event as JSON data (e.g. an event-log row's payload).
        """
        return cls.personal

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, v: datetime) -> datetime:
        try:
            return v.astimezone(UTC)
        except OverflowError:
            # e.g. 0001-01-01T00:00:00+14:00: no UTC equivalent inside datetime's range; a
            # ValueError here becomes a ValidationError, refused like any other bad field
            raise ValueError(f"{v.isoformat()} is out of the supported date range") from None

    @property
    def subject(self) -> str:
        return subject_for(self.type)

    @property
    def position(self) -> Position | None:
        """Where the event happened, when it has a place."""
        pos = getattr(self, "pos", None)
        return pos if isinstance(pos, Position) else None

    @property
    def device_id(self) -> str | None:
        """The device the event came from or is about, when there is one."""
        dev = getattr(self, "device", None)
        return dev if isinstance(dev, str) else None

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


DeviceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._\-]+$")]

FIXED_DEVICE_TYPES: frozenset[str] = frozenset({DeviceType.acoustic_sensor.value})
"""Device types mounted at a surveyed place: a heartbeat never moves them (``rtcc.ingest.health``).

Every other type may move with a person: a body cam is worn by an officer, a camera or a plate
camera may ride in a patrol car. Where such a device is, is where an officer is.
"""


def locates_officer(device_type: str | None) -> bool:
    """Whether the position of a device of ``device_type`` is an officer's location (personal data).

    Unknown or missing types count as personal: when in doubt the read is audited.
    """
    return device_type not in FIXED_DEVICE_TYPES


# --- devices -----------------------------------------------------------------


class DeviceHeartbeat(Event):
    """A device says it is alive, where it is and how it is.

    The heartbeat of a device that moves with an officer (:func:`locates_officer`: body cams,
    in-car and plate cameras) is personal data, the officer's position; a fixed sensor's is not.
    """

    type: Literal["device_heartbeat"] = "device_heartbeat"
    sometimes_personal: ClassVar[bool] = True
    device: DeviceId
    device_type: DeviceType
    pos: Position | None = None
    battery_pct: float | None = Field(None, ge=0, le=100)
    gps_lock: bool | None = None
    clock_quality: Literal["gps_pps", "gps", "ntp", "configured", "unknown"] | None = None
    noise_floor_db: float | None = Field(None, ge=-200, le=200)
    recording: bool | None = None
    heading_deg: float | None = Field(None, ge=0, lt=360)

    @classmethod
    def is_personal(cls, payload: Mapping[str, Any]) -> bool:
        device_type = payload.get("device_type")
        return locates_officer(device_type if isinstance(device_type, str) else None)


class DeviceStatus(Event):
    """Edge-triggered health: emitted once when a device goes online or offline."""

    type: Literal["device_status"] = "device_status"
    device: DeviceId
    device_type: DeviceType
    status: Literal["online", "offline"]
    reason: str = ""


class DevicePosition(Event):
    """A fixed device's registered position or its position-mismatch flag changed.

    Emitted by the acoustic pipeline when a sensor's pulses start (or stop) reporting a position
    further than ``acoustic.position_tolerance_m`` from its registered one, and by
    ``PUT /devices/{id}/position`` when an admin sets the registered position.
    """

    type: Literal["device_position"] = "device_position"
    device: DeviceId
    device_type: DeviceType
    pos: Position | None = None
    """The registered (reference) position, when it is known."""
    mismatch: bool
    offset_m: float | None = Field(None, ge=0)
    """How far the device reported itself from ``pos`` (the last checked pulse), metres."""
    reason: str = Field("", max_length=1000)


class DeviceCommand(Event):
    """The center tells a device to do something (e.g. a body cam to record)."""

    type: Literal["device_command"] = "device_command"
    device: DeviceId
    command: Literal["start_recording", "stop_recording"]
    reason: str = Field(min_length=1, max_length=500)
    issued_by: str
    automatic: bool = False
    # body-cam protocol (docs/bodycam-protocol.md): one command, several delivery attempts
    command_id: UUID | None = None
    nonce: str = Field("", max_length=64, description="Random, once per command; devices ignore replays.")
    expires_at: AwareDatetime | None = None
    attempt: int = Field(1, ge=1, le=100)
    signature: str = Field("", max_length=128, description="HMAC-SHA256 with the device key's hash.")


class DeviceCommandAck(Event):
    """A device acknowledges a command."""

    type: Literal["device_command_ack"] = "device_command_ack"
    device: DeviceId
    command_id: UUID
    ok: bool = True
    detail: str = ""
    nonce: str = Field("", max_length=64, description="The command's nonce, echoed.")
    recording: bool | None = None


# --- acoustic ----------------------------------------------------------------


class Pulse(Event):
    """An impulsive onset heard by one acoustic sensor (``occurred_at`` = arrival time)."""

    type: Literal["pulse"] = "pulse"
    device: DeviceId
    pos: Position
    peak_db: float = Field(ge=-200, le=250)
    snr_db: float = Field(ge=-100, le=250)
    duration_ms: float = Field(ge=0, le=60_000)
    sample_rate_hz: int | None = Field(None, ge=1000, le=384_000)
    audio_flac_b64: str | None = Field(None, max_length=2_000_000)

    @field_validator("audio_flac_b64")
    @classmethod
    def _flac(cls, v: str | None) -> str | None:
        """Stored audio must play: standard base64 of a FLAC stream with at least one sample."""
        if v is None:
            return None
        try:
            flac = base64.b64decode(v, validate=True)
        except binascii.Error:
            flac = b""
        if not flac.startswith(b"fLaC"):
            raise ValueError("audio_flac_b64 must be base64 (standard alphabet, padded) of a FLAC stream")
        _check_flac_plays(flac)
        return v


def _check_flac_plays(flac: bytes) -> None:
    """Raise ValueError unless ``flac`` decodes to at least one sample (cheap: its first 4,096 frames).

    A FLAC header without audio frames passes the ``fLaC`` check and then does not play.
    """
    import soundfile as sf  # here: most processes never parse a pulse

    try:
        with sf.SoundFile(io.BytesIO(flac)) as f:
            samples = f.read(4096, dtype="float32", always_2d=True).shape[0]
    except (RuntimeError, ValueError, TypeError) as exc:  # sf.LibsndfileError is a RuntimeError
        why = getattr(exc, "error_string", None) or str(exc)
        raise ValueError(f"{_NO_SAMPLES} (the decoder says: {why.strip()})") from None
    if samples < 1:
        raise ValueError(_NO_SAMPLES)


_NO_SAMPLES = "audio_flac_b64 decodes to no audio sample (a FLAC header without audio frames?)"


class ShotLocated(Event):
    """One bang located by multilateration."""

    type: Literal["shot_located"] = "shot_located"
    pos: Position
    ellipse_major_m: float = Field(ge=0)
    ellipse_minor_m: float = Field(ge=0)
    ellipse_angle_deg: float
    sensors: list[str]
    pulse_ids: list[UUID] = Field(default_factory=list)
    quality: Literal["good", "poor"] = "good"


class GunshotIncident(Event):
    """A classified incident made of one or more located shots."""

    type: Literal["gunshot_incident"] = "gunshot_incident"
    incident_id: UUID = Field(default_factory=uuid4)
    pos: Position
    ellipse_major_m: float = Field(ge=0)
    ellipse_minor_m: float = Field(ge=0)
    ellipse_angle_deg: float = 0.0
    rounds: int = Field(ge=1)
    intervals_s: list[float] = Field(default_factory=list, description="Seconds between rounds.")
    automatic: bool = Field(False, description="Probable automatic fire.")
    multiple_shooters: bool = False
    location_quality: Literal["good", "poor"] = Field(
        "good", description="poor: every round's fix had poor sensor geometry (location less sure)."
    )
    label: str
    confidence: float = Field(ge=0, le=1)
    status: Literal["alerted", "pending_review", "confirmed", "dismissed", "below_threshold"] = "alerted"
    sensors: list[str]


# --- plates ------------------------------------------------------------------


class PlateRead(Event):
    """A licence plate read by a camera."""

    type: Literal["plate_read"] = "plate_read"
    personal: ClassVar[bool] = True
    device: DeviceId
    pos: Position
    plate: str = Field(min_length=1, max_length=16, pattern=r"^[A-Z0-9]+$")
    region: str | None = Field(None, max_length=16)
    confidence: float = Field(ge=0, le=1)
    heading_deg: float | None = Field(None, ge=0, lt=360)
    image_ref: str | None = Field(None, max_length=512)
    crop_ref: str | None = Field(None, max_length=512, description="Media-store ref of the plate crop.")
    direction: Literal["N", "NE", "E", "SE", "S", "SW", "W", "NW"] | None = Field(
        None, description="Compass point the vehicle travels towards, when known."
    )


class HotlistHit(Event):
    """A plate read matched a hotlist entry: verify before action."""

    type: Literal["hotlist_hit"] = "hotlist_hit"
    personal: ClassVar[bool] = True
    read_id: UUID
    device: DeviceId
    pos: Position
    plate: str
    entry_plate: str
    category: str
    match: Literal["exact", "lookalike", "partial"]
    # issue 3: the hit row (GET /hits/{hit_id}), its entry and the read's photos
    hit_id: UUID | None = Field(None, description="The hit (GET /api/v1/hits/{hit_id}); also the event id.")
    entry_id: UUID | None = None
    entry_source: str = Field("", max_length=64, description="Hotlist the entry came from.")
    reason: str = Field("", max_length=2000, description="The entry's reason (e.g. NCIC record).")
    distance: int = Field(0, ge=0, le=16, description="Edits from the entry after look-alike folding.")
    image_ref: str | None = Field(None, max_length=512)
    crop_ref: str | None = Field(None, max_length=512)
    status: Literal["verify", "confirmed", "rejected"] = "verify"


class HitDecision(Event):
    """Someone confirmed a hotlist hit or rejected it (e.g. as a misread), with a reason."""

    type: Literal["hit_decision"] = "hit_decision"
    hit_id: UUID
    decision: Literal["confirmed", "rejected"]
    reason: str = Field(min_length=1, max_length=1000)
    decided_by: str = Field(min_length=1, max_length=128)


# --- operations & oversight ---------------------------------------------------


class AlertSeverity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class Alert(Event):
    """Something an operator should look at."""

    type: Literal["alert"] = "alert"
    alert_id: UUID = Field(default_factory=uuid4)
    kind: str = Field(min_length=1, max_length=64)
    severity: AlertSeverity = AlertSeverity.warning
    title: str = Field(min_length=1, max_length=300)
    pos: Position | None = None
    ref_event_id: UUID | None = None

    sometimes_personal: ClassVar[bool] = True

    @classmethod
    def is_personal(cls, payload: Mapping[str, Any]) -> bool:
        """Alerts of :data:`PLATE_ALERT_KINDS` name a plate in their title."""
        return payload.get("kind") in PLATE_ALERT_KINDS


class AuditEvent(Event):
    """An entry appended to the audit chain, mirrored on the bus for live oversight."""

    type: Literal["audit"] = "audit"
    actor: str
    action: str
    resource: str
    record_id: str | None = None
    outcome: str
    purpose: str | None = None


# --- cameras (issue 4) ----------------------------------------------------------


class CameraStatus(Event):
    """Edge-triggered live-source health: emitted once when a camera's stream goes online or offline."""

    type: Literal["camera_status"] = "camera_status"
    camera_id: UUID
    name: str = Field("", max_length=200)
    status: Literal["online", "offline"]
    reason: str = Field("", max_length=500)


class FootageRequestUpdated(Event):
    """A community camera's owner answered a footage request (uploaded the clip or declined); the
    dashboard re-reads ``GET /footage-requests``. Carries ids and the state only: the clip, the
    owner and the purpose stay behind the role-checked API."""

    type: Literal["footage_request_updated"] = "footage_request_updated"
    request_id: UUID
    camera_id: UUID
    status: Literal["uploaded", "declined"]
    incident_ref: str | None = Field(None, max_length=128)


# --- operations: alert queue & incident packets (issue 5) ----------------------


class AlertUpdated(Event):
    """An alert moved in the queue (acknowledged, assigned, closed, dismissed)."""

    type: Literal["alert_updated"] = "alert_updated"
    alert_id: UUID
    kind: str = Field(min_length=1, max_length=64)
    status: Literal["new", "acknowledged", "assigned", "closed", "dismissed"]
    by: str = Field(min_length=1, max_length=64)
    unit: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=1000)


class PacketUpdated(Event):
    """An incident packet was built or rebuilt; fetch it with ``GET /packets/{kind}/{ref_id}``."""

    type: Literal["packet_updated"] = "packet_updated"
    kind: Literal["gunshot", "hit"]
    ref_id: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    counts: dict[str, int] = Field(default_factory=dict)


EVENT_CLASSES: tuple[type[Event], ...] = (
    DeviceHeartbeat,
    DeviceStatus,
    DevicePosition,
    DeviceCommand,
    DeviceCommandAck,
    Pulse,
    ShotLocated,
    GunshotIncident,
    PlateRead,
    HotlistHit,
    Alert,
    AuditEvent,
    HitDecision,
    AlertUpdated,
    PacketUpdated,
    CameraStatus,
    FootageRequestUpdated,
    # new event classes: add them here (and to LIVE_ROLES)
)
"""Every event type, in one place: the parser and the registry are made from it."""

AnyEvent: Any = Annotated[Union[EVENT_CLASSES], Field(discriminator="type")]  # noqa: UP007

_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)

EVENT_TYPES: dict[str, type[Event]] = {cls.model_fields["type"].default: cls for cls in EVENT_CLASSES}

LIVE_ROLES: dict[str, frozenset[Role]] = {
    "device_heartbeat": OPERATIONS,
    "device_status": STAFF,
    "device_position": STAFF,
    "device_command": frozenset({Role.admin, Role.supervisor}),
    "device_command_ack": frozenset({Role.admin, Role.supervisor}),
    "pulse": frozenset({Role.admin, Role.supervisor, Role.analyst}),
    "shot_located": OPERATIONS,
    "gunshot_incident": OPERATIONS,
    "plate_read": frozenset({Role.admin, Role.supervisor, Role.analyst}),
    "hotlist_hit": OPERATIONS,
    "hit_decision": OPERATIONS,
    "alert": OPERATIONS,
    "audit": frozenset({Role.admin, Role.auditor}),
    "alert_updated": OPERATIONS,
    "packet_updated": OPERATIONS,
    "camera_status": OPERATIONS,
    "footage_request_updated": frozenset({Role.admin, Role.supervisor, Role.analyst}),
}
"""Which roles receive each event type on the live WebSocket."""

PLATE_ALERT_KINDS: frozenset[str] = frozenset({"hotlist_hit"})
"""Alert kinds whose title names a plate (``Hotlist hit OJC7449 …``): every read is audited."""

ALERT_KIND_ROLES: dict[str, frozenset[Role]] = {
    "gunshot_review": frozenset({Role.admin, Role.supervisor, Role.analyst}),
}
"""Alert kinds narrower than :data:`LIVE_ROLES` ``["alert"]`` (e.g. work for reviewers only)."""

DEVICE_SCOPES: dict[DeviceType, frozenset[str]] = {
    DeviceType.acoustic_sensor: frozenset({"pulse", "device_heartbeat"}),
    DeviceType.plate_camera: frozenset({"plate_read", "device_heartbeat"}),
    DeviceType.bodycam: frozenset({"device_heartbeat", "device_command_ack"}),
    DeviceType.camera: frozenset({"device_heartbeat"}),
}
"""Event types each kind of device may publish with its key."""


def subject_for(event_type: str) -> str:
    """The bus subject validated events of ``event_type`` travel on."""
    return f"{EVENTS_PREFIX}.{event_type}"


def parse_event(data: bytes | str | dict[str, Any]) -> Event:
    """Parse and validate one event of any type.

    Raises
    ------
    pydantic.ValidationError
        When the data is not a valid event.
    """
    if isinstance(data, bytes | str):
        return _ADAPTER.validate_json(data)
    return _ADAPTER.validate_python(data)


class DeviceEnvelope(BaseModel):
    """What a device sends over MQTT: its id, its key and one or more events."""

    model_config = ConfigDict(extra="forbid")

    device_id: DeviceId
    key: str = Field(min_length=8, max_length=256)
    events: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


def dumps(obj: Any) -> str:
    """Compact JSON with stable key order."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, default=str)
