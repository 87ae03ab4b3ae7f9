"""Alert exports for analysts and dispatch: CSV, GeoJSON, OASIS CAP 1.2 and a JSON feed.

CAP 1.2 (OASIS, 2010): one ``<alert>`` per message with ``identifier``,
``sender``, ``sent``, ``status``, ``msgType``, ``scope`` and one ``<info>``
(``category``, ``event``, ``urgency``, ``severity``, ``certainty`` and an
``<area>`` with ``areaDesc`` and a ``circle``). A queue step becomes an
``Update`` (or a ``Cancel`` when the alert was dismissed) that ``references``
the first message.

The JSON feed's cursor (:func:`feed_cursor`) is ``<updated_at>|<alert id>``: the feed serves
the alerts after it in ``(updated_at, id)`` order, so two alerts changed at the same instant and
split by the page ``limit`` are both served. A plain time is still a valid cursor (everything
changed after it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from xml.etree import ElementTree as ET

from rtcc.store.tables_ops import AlertRow

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CSV_FIELDS = (
    "id",
    "occurred_at",
    "kind",
    "severity",
    "title",
    "lat",
    "lon",
    "ref_id",
    "status",
    "assigned_unit",
    "acknowledged_at",
    "closed_at",
    "dismissed_at",
    "dismiss_reason",
)
_CAP_SEVERITY = {"critical": "Severe", "warning": "Moderate", "info": "Minor"}
_CAP_URGENCY = {"critical": "Immediate", "warning": "Expected", "info": "Future"}


def _iso(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).isoformat()


def _cell(value: Any) -> str:
    """A CSV cell that spreadsheets will not run as a formula."""
    text = "" if value is None else (_iso(value) if isinstance(value, datetime) else str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def alerts_csv(rows: Iterable[AlertRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in rows:
        w.writerow([_cell(getattr(r, f)) for f in CSV_FIELDS])
    return buf.getvalue()


def alerts_geojson(rows: Iterable[AlertRow]) -> dict[str, Any]:
    """A FeatureCollection; alerts without a position have ``geometry: null`` (RFC 7946 §3.2)."""
    features = []
    for r in rows:
        props = {f: (_iso(v) if isinstance(v := getattr(r, f), datetime) else v) for f in CSV_FIELDS}
        props["id"] = str(r.id)
        props.pop("lat")
        props.pop("lon")
        geom = None if r.lat is None or r.lon is None else {"type": "Point", "coordinates": [r.lon, r.lat]}
        features.append({"type": "Feature", "id": str(r.id), "geometry": geom, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _cap_time(at: datetime) -> str:
    """CAP's dateTime: ``YYYY-MM-DDThh:mm:ss+00:00`` (no fractions, no ``Z``)."""
    return at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def cap_xml(row: AlertRow, *, sender: str, area_radius_m: float = 250.0) -> bytes:
    """The alert as one OASIS CAP 1.2 message (UTF-8 XML)."""
    ET.register_namespace("", CAP_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        if text is not None:
            el.text = text
        return el

    first = row.status == "new"
    root = ET.Element(f"{{{CAP_NS}}}alert")
    sub(root, "identifier", f"{row.id}" if first else f"{row.id}:{row.status}")
    sub(root, "sender", sender)
    sub(root, "sent", _cap_time(row.occurred_at if first else row.updated_at))
    sub(root, "status", "Actual")
    sub(root, "msgType", "Alert" if first else ("Cancel" if row.status == "dismissed" else "Update"))
    sub(root, "scope", "Restricted")
    sub(root, "restriction", "Law enforcement and dispatch only")
    if not first:
        sub(root, "references", f"{sender},{row.id},{_cap_time(row.occurred_at)}")
    info = sub(root, "info")
    sub(info, "language", "en-US")
    sub(info, "category", "Security")
    sub(info, "event", row.kind.replace("_", " "))
    sub(info, "responseType", "Monitor" if row.status in ("closed", "dismissed") else "Assess")
    sub(info, "urgency", "Past" if row.status in ("closed", "dismissed") else _CAP_URGENCY[row.severity])
    sub(info, "severity", _CAP_SEVERITY.get(row.severity, "Unknown"))
    sub(info, "certainty", "Observed" if row.severity == "critical" else "Possible")
    sub(info, "headline", row.title[:160])
    desc = f"{row.title}. Queue status: {row.status}."
    if row.assigned_unit:
        desc += f" Assigned to unit {row.assigned_unit}."
    sub(info, "description", desc)
    param = sub(info, "parameter")
    sub(param, "valueName", "rtcc_status")
    sub(param, "value", row.status)
    area = sub(info, "area")
    if row.lat is not None and row.lon is not None:
        sub(area, "areaDesc", f"Within {area_radius_m:.0f} m of {row.lat:.5f}, {row.lon:.5f}")
        sub(area, "circle", f"{row.lat:.6f},{row.lon:.6f} {area_radius_m / 1000:.3f}")
    else:
        sub(area, "areaDesc", "Location not known")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def feed_item(row: AlertRow) -> dict[str, Any]:
    """One entry of the JSON feed for CAD systems."""
    return {
        "id": str(row.id),
        "kind": row.kind,
        "severity": row.severity,
        "title": row.title,
        "status": row.status,
        "occurred_at": _iso(row.occurred_at),
        "updated_at": _iso(row.updated_at),
        "lat": row.lat,
        "lon": row.lon,
        "ref_id": row.ref_id,
        "assigned_unit": row.assigned_unit,
    }


CURSOR_SEP = "|"


def feed_cursor(at: datetime, alert_id: UUID | None = None) -> str:
    """The feed's ``next_since``: ``<updated_at ISO>|<alert id>`` (or only the time, with no alert)."""
    return _iso(at) if alert_id is None else f"{_iso(at)}{CURSOR_SEP}{alert_id}"


def split_feed_cursor(text: str) -> tuple[str, UUID | None]:
    """``(time text, alert id or None)`` of a cursor; ValueError when the id part is not a UUID."""
    when, sep, last = text.strip().partition(CURSOR_SEP)
    return when, (UUID(last.strip()) if sep else None)


def feed_json(rows: Iterable[AlertRow], *, next_since: datetime | str | None) -> bytes:
    items = [feed_item(r) for r in rows]
    cursor = next_since if isinstance(next_since, str) else (_iso(next_since) or None)
    return json.dumps({"items": items, "next_since": cursor}, separators=(",", ":")).encode()
