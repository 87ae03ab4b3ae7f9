"""Gunshot incidents and their review queue; the audio of a contributing sensor.

* ``GET /gunshots`` and ``GET /gunshots/{incident_id}`` — operations roles.
* ``POST /gunshots/{incident_id}/review`` — a supervisor, analyst or admin
  confirms or dismisses, with a reason (audited with it); a confirmation of an
  incident that had not alerted publishes the gunfire alert.
* ``GET /gunshots/{incident_id}/audio?sensor=ID&round=N`` — the FLAC a contributing
  sensor sent with its pulse of round ``N`` (1-based, default 1; the incident's
  ``audio`` lists the rounds each sensor sent audio for). Audio of a street can
  hold voices: every read is audited, with the sensor and round.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from rtcc.api.deps import Allow, CtxDep, Operations, Principal
from rtcc.api.routes.alerts import settle_alerts
from rtcc.api.text import Reason
from rtcc.errors import NotFound, ValidationFailed
from rtcc.roles import Role

router = APIRouter(prefix="/gunshots", tags=["gunshots"])

Reviewers = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]


class SensorAudio(BaseModel):
    sensor: str
    rounds: list[int] = Field(description="1-based rounds this sensor sent audio for.")


class GunshotOut(BaseModel):
    id: UUID
    occurred_at: datetime
    lat: float
    lon: float
    ellipse_major_m: float = Field(description="95% ellipse, major semi-axis, m.")
    ellipse_minor_m: float = Field(description="95% ellipse, minor semi-axis, m.")
    ellipse_angle_deg: float = Field(description="Bearing of the major axis, degrees clockwise from north.")
    rounds: int
    intervals_s: list[float]
    automatic: bool = Field(description="Probable automatic fire.")
    multiple_shooters: bool
    location_quality: Literal["good", "poor"] = Field(
        description="poor: every round's fix had poor sensor geometry (outside the array): less sure."
    )
    temperature_c: float | None = Field(
        None, description="Air temperature behind the speed of sound of the location, °C (null: before 0013)."
    )
    temperature_source: Literal["feed", "settings"] | None = Field(
        None, description="feed: acoustic.weather_url's observation; settings: acoustic.temperature_c."
    )
    label: str
    confidence: float
    sensors: list[str]
    audio: list[SensorAudio] = Field(
        default_factory=list,
        description=(
            "The (sensor, round) pairs with audio (GET …/audio?sensor=&round=); empty: no audio was sent. "
            "Incidents before revision 0014 list each sensor's first pulse as round 1."
        ),
    )
    status: Literal["alerted", "pending_review", "confirmed", "dismissed", "below_threshold"]
    reviewed_by: str | None
    review_reason: str | None
    reviewed_at: datetime | None
    outcome: str | None


class GunshotList(BaseModel):
    items: list[GunshotOut]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirm", "dismiss"]
    reason: Reason = Field(description="Why (kept in the audit log).")


def _out(row: Any) -> GunshotOut:
    from rtcc.acoustic.incidents import incident_dict

    return GunshotOut.model_validate(incident_dict(row))


@router.get("", summary="Gunshot incidents, newest first")
async def list_gunshots(
    ctx: CtxDep,
    who: Operations,
    status: list[Literal["alerted", "pending_review", "confirmed", "dismissed", "below_threshold"]]
    | None = Query(None, description="Only these review states."),
    since: datetime | None = Query(None, description="From this time (with a timezone)."),
    until: datetime | None = Query(None, description="Before this time (with a timezone)."),
    limit: int = Query(100, ge=1, le=1000),
) -> GunshotList:
    from rtcc.acoustic.incidents import list_incidents

    for dt in (since, until):
        if dt is not None and dt.tzinfo is None:
            raise ValidationFailed("since/until need a timezone (e.g. 2026-01-01T00:00:00Z)")
    rows = await ctx.store.read(
        lambda s: list_incidents(s, status=list(status or []), since=since, until=until, limit=limit)
    )
    return GunshotList(items=[_out(r) for r in rows])


@router.get("/{incident_id}", summary="One gunshot incident")
async def get_gunshot(incident_id: UUID, ctx: CtxDep, who: Operations) -> GunshotOut:
    from rtcc.acoustic.incidents import get_incident

    return _out(await ctx.store.read(lambda s: get_incident(s, incident_id)))


@router.post("/{incident_id}/review", summary="Confirm or dismiss an incident, with a reason (audited)")
async def review_gunshot(incident_id: UUID, body: ReviewIn, ctx: CtxDep, who: Reviewers) -> GunshotOut:
    from rtcc.acoustic.incidents import IncidentRecord, review_incident
    from rtcc.acoustic.pipeline import NAMESPACE, incident_alert, incident_event

    now = datetime.now(UTC)
    row, before = await ctx.store.write(
        lambda s: review_incident(
            s, incident_id, decision=body.decision, reviewer=who.username, reason=body.reason, at=now
        )
    )
    await ctx.audit(
        who,
        f"gunshot_{body.decision}",
        "gunshot_incident",
        record_id=str(incident_id),
        purpose=body.reason,
        details={"decision": body.decision, "reason": body.reason, "status_before": before},
    )
    rec = IncidentRecord(
        id=row.id,
        occurred_at=row.occurred_at,
        lat=row.lat,
        lon=row.lon,
        ellipse_major_m=row.ellipse_major_m,
        ellipse_minor_m=row.ellipse_minor_m,
        ellipse_angle_deg=row.ellipse_angle_deg,
        rounds=row.rounds,
        label=row.label,
        confidence=row.confidence,
        status="confirmed" if body.decision == "confirm" else "dismissed",
        sensors=list(row.sensors or []),
        intervals_s=list(row.intervals_s or []),
        automatic=row.automatic,
        multiple_shooters=row.multiple_shooters,
        location_quality="poor" if row.location_quality == "poor" else "good",
    )
    # the map and open dashboards learn the decision at once (the incident with its new status)
    update = incident_event(rec, uuid5(NAMESPACE, f"review:{row.id}:{row.status}"))
    await ctx.bus.publish(update.subject, update.to_json(), msg_id=str(update.event_id))
    if body.decision == "confirm" and before != "alerted":
        alert = incident_alert(rec, review=False, confirmed_by=who.username)
        await ctx.bus.publish(alert.subject, alert.to_json(), msg_id=str(alert.event_id))
    # the decision settles the alerts that announced the incident (the review's, and a dismissed
    # incident's gunfire alert); a confirmed incident's gunfire alert stays open for dispatch
    if body.decision == "confirm":
        await settle_alerts(ctx, who, row.id, ("gunshot_review",), "close", f"confirmed: {body.reason}")
    else:
        reason = f"incident dismissed in review: {body.reason}"
        await settle_alerts(ctx, who, row.id, ("gunshot", "gunshot_review"), "dismiss", reason)
    return _out(row)


@router.get(
    "/{incident_id}/audio",
    summary="The FLAC a contributing sensor sent for one round (audited: audio is personal data)",
    response_class=Response,
    responses={200: {"content": {"audio/flac": {}}, "description": "FLAC audio around the onset."}},
)
async def gunshot_audio(
    incident_id: UUID,
    ctx: CtxDep,
    who: Operations,
    sensor: str = Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._\-]+$"),
    round_no: int = Query(1, alias="round", ge=1, le=100_000, description="The round, 1-based."),
) -> Response:
    payload = await ctx.store.read(lambda s: _round_pulse(s, incident_id, sensor, round_no))
    audio = payload.get("audio_flac_b64")
    try:
        flac = base64.b64decode(audio or "", validate=True)
    except (binascii.Error, TypeError):
        flac = b""
    if not flac.startswith(b"fLaC"):  # stripped by retention, or stored before ingest checked it
        raise NotFound(
            f"no playable audio stored for sensor {sensor!r}, round {round_no} "
            f"of gunshot incident {incident_id}"
        )
    await ctx.audit(
        who,
        "read_gunshot_audio",
        "gunshot_incident",
        record_id=str(incident_id),
        details={"sensor": sensor, "round": round_no},
    )
    return Response(
        flac,
        media_type="audio/flac",
        headers={"content-disposition": f'inline; filename="{incident_id}-{sensor}-round{round_no}.flac"'},
    )


def _round_pulse(s: Any, incident_id: UUID, sensor: str, round_no: int) -> dict[str, Any]:
    """The stored payload of ``sensor``'s pulse of round ``round_no`` (1-based) of an incident.

    Raises
    ------
    NotFound
        No such incident; the sensor did not contribute; it sent no audio for that round (the
        error names the rounds it sent audio for); or the pulse is not in the event log.
    """
    from rtcc.acoustic.incidents import audio_rounds, get_incident, sensor_round_pulses
    from rtcc.store.tables import EventRecord

    row = get_incident(s, incident_id)
    slots = sensor_round_pulses(row)
    if sensor not in slots:
        raise NotFound(
            f"sensor {sensor!r} did not contribute to gunshot incident {incident_id}",
            details={"sensors": sorted(slots)},
        )
    with_audio: list[int] = next((a["rounds"] for a in audio_rounds(row) if a["sensor"] == sensor), [])
    pulse_id = slots[sensor][round_no - 1] if round_no <= len(slots[sensor]) else None
    if pulse_id is None or round_no not in with_audio:
        have = ", ".join(map(str, with_audio)) or "none"
        raise NotFound(
            f"sensor {sensor!r} sent no audio for round {round_no} of gunshot incident {incident_id} "
            f"(rounds with its audio: {have})",
            details={"sensor": sensor, "round": round_no, "rounds": with_audio},
        )
    payload = s.scalars(
        select(EventRecord.payload).where(EventRecord.event_id == UUID(pulse_id)).limit(1)
    ).first()
    if payload is None:
        raise NotFound(f"the pulse of sensor {sensor!r}, round {round_no} is not in the event log yet")
    return dict(payload)
