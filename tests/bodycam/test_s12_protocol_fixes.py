"""Body-cam protocol fixes: the signed ``expires_at`` is the sent one, acks need the exact nonce,
revoked units' commands are cancelled, offline units warn, failed commands are counted."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy.orm import Session

from rtcc.api.deps import Principal
from rtcc.bodycam.commands import apply_ack, command_event, process_due
from rtcc.bodycam.device import Bodycam, parse_received
from rtcc.bodycam.processor import BodycamProcessor
from rtcc.bodycam.protocol import canonical, key_hash, sign, wire_time
from rtcc.bodycam.service import commander_of
from rtcc.bodycam.transparency import stats
from rtcc.events import DeviceCommand, DeviceCommandAck
from rtcc.roles import DeviceType, Role
from rtcc.store.tables import Device
from rtcc.store.tables_bodycams import BodycamCommand
from tests.bodycam.conftest import MakeRig, Rig, audit_rows
from tests.helpers import eventually

DOC = Path(__file__).resolve().parents[2] / "docs" / "bodycam-protocol.md"

VECTOR = {
    "device key": "bwc_example_key_0123456789abcdef",
    "sha256_hex(key)": "48cf37edff3e6894dc4e465225826d75fb623a8cd46423c1ca2d029a374ffbf1",
    "command_id": "6b0e2c1a-8f3d-4e5b-9a7c-1d2e3f405162",
    "device": "bwc-07",
    "command": "start_recording",
    "nonce": "9f4c1e2d3b4a59687f8e9d0c1b2a3948",
    "expires_at": "2026-11-23T03:18:17.429230Z",
    "automatic": "true",
    "message": "6b0e2c1a-8f3d-4e5b-9a7c-1d2e3f405162|bwc-07|start_recording|9f4c1e2d3b4a59687f8e9d0c1b2a3948"
    "|2026-11-23T03:18:17.429230Z|1",
    "signature": "7b142f50ea40d14aa5bbb69a63612b4c160eb13095d704860b4b058d721c6ef6",
}
"""The test vector of docs/bodycam-protocol.md (the page is checked against it)."""


def _doc_vector() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"Test vector.*?```text\n(.*?)```", text, re.DOTALL)
    assert found is not None, "the test vector block is missing from docs/bodycam-protocol.md"
    out = {}
    for line in found.group(1).splitlines():
        if line.strip():
            name, value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            out[name] = value
    return out


def _doc_hmac(key: str, fields: dict[str, Any]) -> str:
    """The signature as a device built from the protocol page computes it, over the received strings."""
    msg = "|".join(
        [
            str(fields["command_id"]),
            str(fields["device"]),
            str(fields["command"]),
            str(fields["nonce"]),
            str(fields["expires_at"]),
            "1" if fields["automatic"] else "0",
        ]
    )
    secret = hashlib.sha256(key.encode()).hexdigest().encode()
    return hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()


def _row(expires_at: datetime, *, automatic: bool = True) -> BodycamCommand:
    now = expires_at - timedelta(seconds=120)
    return BodycamCommand(
        id=uuid4(),
        device_id="bwc-07",
        command="start_recording",
        reason="automatic: test",
        issued_by="system:bodycam-policy",
        automatic=automatic,
        trigger_ref=None,
        nonce=uuid4().hex,
        status="sent",
        attempts=1,
        created_at=now,
        sent_at=now,
        deadline_at=now + timedelta(seconds=5),
        expires_at=expires_at,
    )


# -- 1. the signed expires_at is the sent expires_at ----------------------------------------------


def test_protocol_doc_test_vector_matches_the_code() -> None:
    assert _doc_vector() == VECTOR
    key = VECTOR["device key"]
    assert key_hash(key) == VECTOR["sha256_hex(key)"]
    fields = {k: VECTOR[k] for k in ("command_id", "device", "command", "nonce", "expires_at")}
    assert _doc_hmac(key, {**fields, "automatic": True}) == VECTOR["signature"]
    # the command as it arrives in JSON; the center's canonical form and signature are the vector's
    cmd = DeviceCommand.model_validate_json(
        json.dumps(
            {
                "type": "device_command",
                "source": "bodycam",
                "reason": "r",
                "issued_by": "s",
                "automatic": True,
                **fields,
            }
        )
    )
    assert canonical(cmd).decode() == VECTOR["message"]
    assert sign(key_hash(key), cmd) == VECTOR["signature"]
    assert wire_time(cmd.expires_at) == VECTOR["expires_at"]
    assert json.loads(cmd.to_json())["expires_at"] == VECTOR["expires_at"]


@pytest.mark.parametrize(
    "expires_at",
    [
        datetime(2026, 11, 23, 3, 18, 17, 429230, tzinfo=UTC),
        datetime(2026, 11, 23, 3, 18, 17, tzinfo=UTC),  # no fraction
        datetime(2026, 11, 23, 5, 18, 17, 1000, tzinfo=timezone(timedelta(hours=2))),  # not UTC
    ],
)
def test_center_signs_the_expires_at_string_it_sends(expires_at: datetime) -> None:
    key = "bwc_example_key_0123456789abcdef"
    ev = command_event(_row(expires_at), key_hash(key))
    for wire in (ev.to_json(), json.dumps(ev.model_dump(mode="json")).encode()):  # MQTT, HTTPS poll
        sent = json.loads(wire)
        assert sent["expires_at"].endswith("Z")
        assert sent["signature"] == _doc_hmac(key, sent)


def test_simulated_device_checks_the_signature_over_the_received_string() -> None:
    key = "bwc_third_party_key_0123456789"
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    item: dict[str, Any] = {
        "type": "device_command",
        "source": "bodycam",
        "device": "bwc-9",
        "command": "start_recording",
        "reason": "test",
        "issued_by": "sup",
        "automatic": False,
        "command_id": str(uuid4()),
        "nonce": uuid4().hex,
        "expires_at": "2026-11-21T12:01:00+00:00",  # a form the center does not send: signed as is
    }
    item["signature"] = _doc_hmac(key, item)
    later = {**item, "nonce": uuid4().hex, "expires_at": "2026-11-21T12:59:00+00:00"}
    later["signature"] = _doc_hmac(key, later)
    # someone moves the expiry of a captured command: same signature, another string
    stretched = {**later, "expires_at": "2026-11-21T13:59:00+00:00"}
    cam = Bodycam("bwc-9", key, clock=lambda: now)
    (got, raw), (moved, moved_raw) = parse_received([item, stretched])
    assert raw == item["expires_at"]
    assert cam.receive(moved, moved_raw) is None and cam.verdicts["forged"] == 1
    assert cam.receive(got, raw) is not None and cam.recording is True


@pytest.mark.parametrize("backend", ["embedded"])
async def test_https_poll_command_verifies_against_the_received_string(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig(bodycam={"ack_timeout_s": 30.0})
    cam = await rig.add_cam("bwc-s1", start=False)
    r = await rig.clients[Role.supervisor].post(
        "/api/v1/bodycams/bwc-s1/commands", json={"command": "start_recording", "reason": "call 41"}
    )
    assert r.status_code == 202, r.text
    r = await rig.run.http.post(
        "/api/v1/bodycams/commands/poll",
        json={"device_id": "bwc-s1", "wait_s": 5},
        headers={"authorization": f"Device {cam.key}"},
    )
    assert r.status_code == 200, r.text
    (sent,) = r.json()["commands"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", sent["expires_at"])
    assert sent["signature"] == _doc_hmac(cam.key, sent)
    ((cmd, raw),) = parse_received([sent])
    assert cam.receive(cmd, raw) is not None and cam.recording is True


# -- 2. an acknowledgement needs the command's exact nonce ------------------------------------------


async def _status(rig: Rig, command_id: UUID | str) -> str:
    store = rig.run.center.store
    cid = UUID(str(command_id))
    return str(await store.read(lambda s: s.get(BodycamCommand, cid).status))


@pytest.mark.parametrize("backend", ["embedded"])
async def test_ack_with_empty_or_missing_nonce_is_ignored(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig(bodycam={"ack_timeout_s": 30.0})
    cam = await rig.add_cam("bwc-n", start=False)
    r = await rig.clients[Role.supervisor].post(
        "/api/v1/bodycams/bwc-n/commands", json={"command": "start_recording", "reason": "call 7"}
    )
    cid = r.json()["id"]
    (cmd,) = await rig.link.poll(cam, 5.0)
    empty = DeviceCommandAck(source="bwc-n", device="bwc-n", command_id=cmd.command_id, nonce="")
    missing = {k: v for k, v in empty.model_dump(mode="json").items() if k != "nonce"}
    missing["event_id"] = str(uuid4())
    r = await rig.run.http.post(
        "/api/v1/ingest/events",
        json={"events": [empty.model_dump(mode="json"), missing]},
        headers={"authorization": f"Device {cam.key}"},
    )
    assert r.status_code == 202, r.text

    async def two_audited() -> list[dict[str, Any]] | None:
        rows = await audit_rows(rig, "bodycam_ack")
        return rows if len(rows) >= 2 else None

    rows = await eventually(two_audited, what="2 acks audited")
    assert [a["outcome"] for a in rows] == ["ignored_mismatch", "ignored_mismatch"]
    assert await _status(rig, cid) == "sent"
    # the real acknowledgement (the exact nonce) still applies
    ack = cam.receive(cmd)
    assert ack is not None and ack.nonce == cmd.nonce
    assert await rig.link.send(cam, [ack])

    async def applied() -> bool:
        return await _status(rig, cid) == "acked"

    await eventually(applied, what="command acked")
    outcomes = sorted(a["outcome"] for a in await audit_rows(rig, "bodycam_ack"))
    assert outcomes == ["ignored_mismatch", "ignored_mismatch", "ok"]


# -- 3. revoked units: cancelled, not retried; offline units: a warning ------------------------------


@pytest.mark.parametrize("backend", ["embedded"])
async def test_revoked_units_commands_are_cancelled_at_the_next_check(make_rig: MakeRig) -> None:
    # no bodycam processor running: the test runs its retry check itself, once
    rig: Rig = await make_rig(processors=("recorder", "health"), bodycam={"ack_timeout_s": 30.0})
    await rig.add_cam("bwc-rv", start=False)
    await rig.add_cam("bwc-ok", start=False)
    sup = rig.clients[Role.supervisor]
    ids = []
    for dev in ("bwc-rv", "bwc-rv", "bwc-ok"):
        r = await sup.post(
            f"/api/v1/bodycams/{dev}/commands", json={"command": "start_recording", "reason": "call 12"}
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    r = await rig.clients[Role.admin].post("/api/v1/devices/bwc-rv/revoke")
    assert r.status_code == 200, r.text

    proc = BodycamProcessor(rig.run.center)
    assert await proc.check_due() == (0, 0)
    assert [await _status(rig, i) for i in ids] == ["cancelled", "cancelled", "sent"]
    cancelled = await audit_rows(rig, "bodycam_command_cancelled")
    assert sorted(a["record_id"] for a in cancelled) == sorted(ids[:2])
    assert {a["outcome"] for a in cancelled} == {"cancelled"}
    # once: a second check changes and audits nothing more
    assert await proc.check_due() == (0, 0)
    assert len(await audit_rows(rig, "bodycam_command_cancelled")) == 2
    # past every deadline: nothing of the revoked unit is re-sent, the other unit's command is
    store = rig.run.center.store
    later = datetime.now(UTC) + timedelta(seconds=60)
    due = await store.write(lambda s: process_due(s, now=later, max_attempts=3, ack_timeout_s=30.0))
    assert [str(i.row.id) for i in due.retried] == [ids[2]] and due.cancelled == []
    rows = await store.read(lambda s: [s.get(BodycamCommand, UUID(i)) for i in ids])
    assert [row.attempts for row in rows] == [1, 1, 2]
    assert all("revoked" in (row.ack_detail or "") for row in rows[:2])
    # an acknowledgement arriving now changes nothing
    ack = DeviceCommandAck(source="bwc-rv", device="bwc-rv", command_id=rows[0].id, nonce=rows[0].nonce)
    out = await store.write(lambda s: apply_ack(s, ack, datetime.now(UTC)))
    assert out.result == "late" and await _status(rig, ids[0]) == "cancelled"


@pytest.mark.parametrize("backend", ["embedded"])
async def test_command_to_offline_or_never_heard_unit_warns(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig(processors=("recorder", "health"), bodycam={"ack_timeout_s": 30.0})
    center = rig.run.center
    store = center.store
    await center.provision_device("bwc-new", DeviceType.bodycam, "cam new", 33.5, -86.8)
    await rig.add_cam("bwc-on", start=False)

    async def heard() -> bool:
        dev = await store.read(lambda s: s.get(Device, "bwc-on"))
        return dev is not None and dev.last_seen_at is not None and dev.status == "online"

    await eventually(heard, what="bwc-on online")
    commander = commander_of(center)
    sup = Principal(username="supervisor1", role=Role.supervisor)
    never = await commander.issue_warned(sup, "bwc-new", "start_recording", "check unit")
    online = await commander.issue_warned(sup, "bwc-on", "start_recording", "check unit")
    assert never is not None and never.warning == "unit never heard from"
    assert online is not None and online.warning is None

    def go_offline(s: Session) -> datetime:
        dev = s.get(Device, "bwc-on")
        assert dev is not None and dev.last_seen_at is not None
        dev.status = "offline"
        return dev.last_seen_at

    last_seen = await store.write(go_offline)
    offline = await commander.issue_warned(sup, "bwc-on", "stop_recording", "check unit")
    assert offline is not None
    assert offline.warning == f"unit offline since {last_seen.astimezone(UTC).isoformat()}"
    issued = {a["record_id"]: a for a in await audit_rows(rig, "bodycam_command")}
    assert issued[str(never.row.id)]["details"]["warning"] == "unit never heard from"
    assert "warning" not in issued[str(online.row.id)]["details"]
    assert issued[str(offline.row.id)]["details"]["warning"].startswith("unit offline since ")


# -- 4. transparency: failed (and cancelled, pending) buckets ------------------------------------------


@pytest.mark.parametrize("backend", ["embedded"])
async def test_transparency_counts_failed_commands(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig(processors=("recorder",))
    store = rig.run.center.store
    now = datetime.now(UTC)

    def seed(s: Session) -> None:
        for status, automatic in [
            ("sent", False),  # acknowledged below with ok: false
            ("acked", False),
            ("timeout", False),
            ("cancelled", True),
            ("sent", True),
        ]:
            row = _row(now + timedelta(seconds=120), automatic=automatic)
            row.status = status
            s.add(row)
            if status == "sent" and not automatic:
                s.flush()
                bad = DeviceCommandAck(
                    source="bwc-07",
                    device="bwc-07",
                    command_id=row.id,
                    ok=False,
                    detail="storage full",
                    nonce=row.nonce,
                )
                assert apply_ack(s, bad, now).result == "failed"

    await store.write(seed)
    figures = await store.read(stats)
    assert figures["remote"] == {
        "start_recording": 3,
        "stop_recording": 0,
        "acknowledged": 1,
        "failed": 1,
        "timeout": 1,
        "cancelled": 0,
        "pending": 0,
    }
    assert figures["automatic"]["cancelled"] == 1 and figures["automatic"]["pending"] == 1
    r = await rig.run.http.get("/api/v1/transparency")
    assert r.status_code == 200, r.text
    assert r.json()["bodycams"]["remote"]["failed"] == 1
