"""The protocol's safeguards: replayed, forged, expired commands; duplicate, unknown, mismatched acks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from rtcc.bodycam.device import Bodycam
from rtcc.bodycam.protocol import key_hash, sign
from rtcc.events import DeviceCommand, DeviceCommandAck
from rtcc.roles import Role
from tests.bodycam.conftest import MakeRig, Rig, audit_rows
from tests.helpers import eventually

KEY = "bwc_test_key_0123456789"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _cmd(
    command: str = "start_recording", *, device: str = "bwc-9", expires_in_s: float = 60.0
) -> DeviceCommand:
    ev = DeviceCommand(
        source="bodycam",
        device=device,
        command=command,  # type: ignore[arg-type]
        reason="test",
        issued_by="sup",
        command_id=uuid4(),
        nonce=uuid4().hex,
        expires_at=NOW + timedelta(seconds=expires_in_s),
    )
    return ev.model_copy(update={"signature": sign(key_hash(KEY), ev)})


def test_device_obeys_once_and_ignores_replays_forgeries_and_expired() -> None:
    cam = Bodycam("bwc-9", KEY, clock=lambda: NOW)
    start, stop = _cmd("start_recording"), _cmd("stop_recording")
    ack = cam.receive(start)
    assert ack is not None and ack.command_id == start.command_id and ack.nonce == start.nonce
    assert cam.recording is True
    assert cam.receive(stop) is not None and cam.recording is False
    # the old start replayed: not executed again, and (same attempt) not even re-acknowledged
    assert cam.receive(start) is None
    assert cam.recording is False and len(cam.executed) == 2
    # the center re-sending it (a higher attempt: our ack was lost) gets a re-acknowledgement only
    again = cam.receive(start.model_copy(update={"attempt": 2}))
    assert again is not None and again.detail == "repeat" and cam.recording is False
    # a forged signature, another device's command, an expired one: ignored
    forged = _cmd().model_copy(update={"signature": "0" * 64})
    tampered = start.model_copy(update={"nonce": uuid4().hex})  # fresh nonce, old signature
    assert cam.receive(forged) is None and cam.receive(tampered) is None
    assert cam.receive(_cmd(device="bwc-other")) is None
    assert cam.receive(_cmd(expires_in_s=-1)) is None
    assert cam.recording is False and len(cam.executed) == 2
    assert cam.verdicts == {"execute": 2, "repeat": 2, "forged": 2, "not_mine": 1, "expired": 1}


@pytest.mark.parametrize("backend", ["embedded"])
async def test_replayed_command_through_the_center_is_ignored(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    cam = await rig.add_cam("bwc-r", start=False)
    admin = rig.clients[Role.admin]
    await admin.post(
        "/api/v1/bodycams/bwc-r/commands", json={"command": "start_recording", "reason": "call 17"}
    )
    (start,) = await rig.link.poll(cam, 5.0)
    # until the device has it, the long-poll returns it; then no longer (the poll says what it has)
    (again,) = await rig.link.poll(cam, 0)
    assert again.command_id == start.command_id
    assert cam.receive(start) is not None
    assert await rig.link.poll(cam, 0) == []
    await admin.post("/api/v1/bodycams/bwc-r/commands", json={"command": "stop_recording", "reason": "done"})
    (stop,) = await rig.link.poll(cam, 5.0)
    cam.receive(stop)
    assert cam.recording is False
    # someone replays the captured start command: the device does not start recording
    assert cam.receive(start) is None
    assert cam.recording is False and [c.command for c in cam.executed] == [
        "start_recording",
        "stop_recording",
    ]


async def test_center_ignores_duplicate_unknown_and_mismatched_acks(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    cam = await rig.add_cam("bwc-a", start=False)
    other = await rig.add_cam("bwc-b", start=False)
    r = await rig.clients[Role.admin].post(
        "/api/v1/bodycams/bwc-a/commands", json={"command": "start_recording", "reason": "robbery call"}
    )
    cid = r.json()["id"]
    (cmd,) = await rig.link.poll(cam, 5.0)
    ack = cam.receive(cmd)
    assert ack is not None
    wrong_nonce = DeviceCommandAck(source="bwc-a", device="bwc-a", command_id=cmd.command_id, nonce="f" * 32)
    unknown = DeviceCommandAck(source="bwc-a", device="bwc-a", command_id=uuid4(), nonce=cmd.nonce)
    others = DeviceCommandAck(source="bwc-b", device="bwc-b", command_id=cmd.command_id, nonce=cmd.nonce)
    assert await rig.link.send(cam, [wrong_nonce, unknown])
    assert await rig.link.send(other, [others])
    assert await rig.link.send(cam, [ack])
    dup = ack.model_copy(update={"event_id": uuid4()})  # a second ack of the same command
    assert await rig.link.send(cam, [dup])

    async def all_audited() -> list[dict[str, object]] | None:
        rows = await audit_rows(rig, "bodycam_ack")
        return rows if len(rows) == 5 else None

    rows = await eventually(all_audited, what="5 acks audited")
    outcomes = sorted(str(a["outcome"]) for a in rows)
    assert outcomes == ["ignored_duplicate", "ignored_mismatch", "ignored_mismatch", "ignored_unknown", "ok"]
    r = await rig.clients[Role.auditor].get("/api/v1/bodycams/commands")
    (row,) = r.json()["items"]
    assert row["id"] == cid and row["status"] == "acked"
