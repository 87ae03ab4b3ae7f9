"""The cameras API's request and response bodies (pydantic, documented field by field)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rtcc.cameras.sources import check_stream_url

CameraKind = Literal["city", "in_car", "community"]
CameraLevel = Literal["registered", "integrated"]
CameraStatus = Literal["pending_verification", "pending_approval", "active", "rejected", "withdrawn"]
"""``withdrawn``: the owner withdrew; kept only for a clip linked to an open case, contact deleted."""
OwnerType = Literal["resident", "business"]
FootageStatus = Literal["requested", "notified", "uploaded", "declined", "expired", "purged"]

_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$"
_PHONE = r"^\+?[0-9 ()\-]{6,31}$"
_STREAM = r"^(rtsp|rtsps|http|https|synthetic)://\S+$"


def _not_blank(value: str | None) -> str | None:
    """The text without surrounding spaces; refuses one that is only spaces."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be blank (only spaces)")
    return value


_JOINERS = frozenset({"\u200c", "\u200d"})
"""Zero-width (non-)joiners: part of correct spelling in Persian and Indic scripts and of emoji."""


def _plain_text(value: str | None) -> str | None:
    """Refuse text with control or invisible formatting characters.

    A registration's free text is shown to operators and, for some fields,
    put in mail: a line break would let an outsider write their own lines
    (a fake "security notice") into a message, and bidi overrides or
    zero-width characters make text read differently from what it is.
    Refused: C0 and C1 controls (tab and line breaks included), line and
    paragraph separators, surrogates and formatting characters (bidi
    controls, zero-width space, BOM, ...), except the zero-width joiner and
    non-joiner (:data:`_JOINERS`).
    """
    if value is None:
        return None
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Zl", "Zp", "Cs") or (cat == "Cf" and ch not in _JOINERS):
            raise ValueError(
                f"must be one line of plain text: control or invisible character U+{ord(ch):04X} found"
            )
    return value


def _stream(value: str | None) -> str | None:
    """Refuse a stream URL the live view could not open (bad host, port or synthetic parameters)."""
    return None if value is None else check_stream_url(value)


class View(BaseModel):
    """Where a camera looks."""

    bearing_deg: float = Field(
        0.0,
        ge=0,
        lt=360,
        allow_inf_nan=False,
        description="Centre of the view, degrees clockwise from north (in-car: from the vehicle's heading).",
    )
    fov_deg: float = Field(
        90.0,
        gt=0,
        le=360,
        allow_inf_nan=False,
        description="Horizontal field of view, degrees (360: all round).",
    )
    range_m: float = Field(
        30.0, gt=0, allow_inf_nan=False, description="How far the camera sees usefully, m."
    )


class CameraIn(View):
    """A city or in-car camera an admin adds."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["city", "in_car"] = Field(description="city (fixed) or in_car (follows its device's GPS).")
    name: str = Field(min_length=1, max_length=200, description="Name shown to operators.")
    lat: float | None = Field(
        None, ge=-90, le=90, allow_inf_nan=False, description="Latitude (city), degrees."
    )
    lon: float | None = Field(
        None, ge=-180, le=180, allow_inf_nan=False, description="Longitude (city), degrees."
    )
    address: str | None = Field(None, max_length=300, description="Street address, if any.")
    level: CameraLevel = Field(
        "integrated", description="integrated: live feed shared; registered: on request."
    )
    stream_url: str | None = Field(
        None,
        max_length=1000,
        pattern=_STREAM,
        description="Live source: rtsp://, http(s):// (MJPEG or JPEG) or synthetic://name (demo).",
    )
    device_id: str | None = Field(
        None,
        max_length=128,
        pattern=r"^[A-Za-z0-9._\-]+$",
        description="In-car: the device whose heartbeats give the camera's position and heading.",
    )

    _plain = field_validator("name", "address")(_plain_text)
    _names = field_validator("name")(_not_blank)
    _stream_url = field_validator("stream_url")(_stream)


class CameraPatch(BaseModel):
    """Fields an admin may change on any camera (unset: unchanged)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, description="Name shown to operators.")
    bearing_deg: float | None = Field(
        None, ge=0, lt=360, allow_inf_nan=False, description="View centre, degrees."
    )
    fov_deg: float | None = Field(
        None, gt=0, le=360, allow_inf_nan=False, description="Field of view, degrees."
    )
    range_m: float | None = Field(None, gt=0, allow_inf_nan=False, description="Range, m.")
    level: CameraLevel | None = Field(None, description="registered or integrated.")
    stream_url: str | None = Field(None, max_length=1000, pattern=_STREAM, description="Live source URL.")

    _plain = field_validator("name")(_plain_text)
    _names = field_validator("name")(_not_blank)
    _stream_url = field_validator("stream_url")(_stream)


class RegistrationIn(View):
    """A resident's or business's camera, registered on the public page (no account)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="A name for the camera, e.g. 'Front porch'.")
    owner_type: OwnerType = Field(description="resident or business.")
    owner_name: str = Field(min_length=1, max_length=200, description="Owner's or business's name.")
    email: str = Field(
        max_length=254, pattern=_EMAIL, description="Contact email; the verification link goes here."
    )
    phone: str | None = Field(None, max_length=32, pattern=_PHONE, description="Contact phone (optional).")
    address: str | None = Field(None, max_length=300, description="Street address.")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude, degrees (from the map).")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude, degrees (from the map).")
    level: CameraLevel = Field(
        "registered", description="registered: footage on request; integrated: share a live feed."
    )
    stream_url: str | None = Field(
        None, max_length=1000, pattern=_STREAM, description="Integrated: the camera's RTSP or HTTP address."
    )

    # an outsider's free text reaches operators' screens and mail: one line of plain text each
    _plain = field_validator("name", "owner_name", "email", "address", "stream_url")(_plain_text)
    _names = field_validator("name", "owner_name")(_not_blank)
    _stream_url = field_validator("stream_url")(_stream)


class RegistrationOut(BaseModel):
    registration_id: UUID = Field(description="Give it with the code from the email to verify.")
    status: CameraStatus
    message: str = Field(description="What happens next, for the person registering.")


class VerifyIn(BaseModel):
    """Verify a registration's contact: the link's token, or the registration id and the code."""

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(None, min_length=16, max_length=128, description="Token from the emailed link.")
    registration_id: UUID | None = Field(None, description="With code: the id returned at registration.")
    code: str | None = Field(None, pattern=r"^[0-9]{6}$", description="The 6-digit code from the email.")


class VerifyOut(BaseModel):
    registration_id: UUID
    status: CameraStatus
    manage_token: str = Field(
        description="Secret for the owner's manage link (view, upload requested clips, withdraw). Shown once."
    )
    manage_url: str = Field(description="The owner's manage link (also emailed).")


class CameraOut(BaseModel):
    """A camera as operators see it (contact only for admins and supervisors)."""

    id: UUID
    kind: CameraKind
    name: str
    level: CameraLevel
    status: CameraStatus
    owner_type: OwnerType | None = None
    address: str | None = None
    lat: float | None = Field(
        None, description="Latitude, degrees (in-car: its device's last known position)."
    )
    lon: float | None = Field(
        None, description="Longitude, degrees (in-car: its device's last known position)."
    )
    heading_deg: float | None = Field(None, description="In-car: the vehicle's last known heading, degrees.")
    position_at: datetime | None = Field(None, description="In-car: when that position was reported.")
    bearing_deg: float = Field(description="View centre, degrees from north (in-car: from the vehicle).")
    fov_deg: float = Field(description="Horizontal field of view, degrees.")
    range_m: float = Field(description="Range, m.")
    device_id: str | None = Field(None, description="In-car: the device giving its position.")
    live: bool = Field(
        description="Has a live source that can be viewed (integrated or city, with a stream)."
    )
    online: bool | None = Field(None, description="Last health probe of the live source (None: not probed).")
    created_at: datetime
    verified_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    owner_name: str | None = Field(None, description="Personal data: admins and supervisors only (audited).")
    email: str | None = Field(None, description="Personal data: admins and supervisors only (audited).")
    phone: str | None = Field(None, description="Personal data: admins and supervisors only (audited).")
    stream_url: str | None = Field(None, description="Admins only (may hold credentials).")


class CameraList(BaseModel):
    items: list[CameraOut]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000, description="Why (kept with the decision and in the audit log).")


class VisibleOut(BaseModel):
    camera_id: UUID
    name: str
    kind: CameraKind
    level: CameraLevel
    distance_m: float = Field(description="From the camera to the point, m.")
    bearing_deg: float = Field(description="From the camera to the point, degrees clockwise from north.")
    live: bool = Field(description="Live view available now.")
    lat: float = Field(description="Camera latitude at that time, degrees.")
    lon: float = Field(description="Camera longitude at that time, degrees.")


class VisibleList(BaseModel):
    at: datetime = Field(description="The time the search was made for.")
    items: list[VisibleOut] = Field(description="Integrated cameras first, then by distance.")


class FootageRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: UUID = Field(description="A registered community camera.")
    incident_ref: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="The incident the clip is for (e.g. a gunshot incident id or a case number).",
    )
    window_start: datetime = Field(description="Start of the footage wanted (with a timezone).")
    window_end: datetime = Field(description="End of the footage wanted (with a timezone).")
    reason: str = Field(min_length=3, max_length=1000, description="Why (audited; shown to the owner).")


class FootageRequestOut(BaseModel):
    id: UUID
    camera_id: UUID
    camera_name: str
    incident_ref: str
    window_start: datetime
    window_end: datetime
    reason: str
    requested_by: str
    status: FootageStatus
    created_at: datetime
    expires_at: datetime
    notified_at: datetime | None = None
    responded_at: datetime | None = None
    owner_note: str | None = None
    clip_bytes: int | None = None
    clip_sha256: str | None = None
    clip_content_type: str | None = None


class FootageRequestList(BaseModel):
    items: list[FootageRequestOut]


class OwnerRequestOut(BaseModel):
    """A footage request as the camera's owner sees it."""

    id: UUID
    window_start: datetime
    window_end: datetime
    reason: str
    status: FootageStatus
    expires_at: datetime


class OwnerView(BaseModel):
    """What the owner's manage link shows."""

    registration_id: UUID
    name: str
    status: CameraStatus
    level: CameraLevel
    owner_type: OwnerType | None
    owner_name: str | None
    email: str | None
    phone: str | None
    address: str | None
    lat: float | None
    lon: float | None
    bearing_deg: float
    fov_deg: float
    range_m: float
    requests: list[OwnerRequestOut]


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=1000, description="Optional note to the center.")


class WithdrawOut(BaseModel):
    withdrawn: bool
    clips_deleted: int
    clips_kept: int = Field(
        0, description="Clips already delivered for an open case, kept as evidence until it closes."
    )
    message: str


class CameraDeleteOut(BaseModel):
    deleted: bool
    clips_deleted: int
    clips_kept: int = Field(
        0,
        description="Clips delivered for an open case, kept as evidence until it closes (the camera stays "
        "only as their record, marked withdrawn).",
    )
    message: str


class TransparencyOut(BaseModel):
    """Counts only, no personal data."""

    cameras: dict[str, int]
    footage_requests: dict[str, int]
