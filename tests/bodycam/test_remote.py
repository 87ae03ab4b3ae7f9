"""Remote activation: command → device obeys and acknowledges → audited; refusals; timeouts."""

from __future__ import annotations

from typing import Any

import pytest

from rtcc.roles import Role
from tests.bodycam.conftest import MakeRig, Rig, audit_rows
from tests.helpers import eventually


async def _commands(rig: Rig, **params: Any) -> list[dict[str, Any]]:
    r = await rig.clients[Role.supervisor].get("/api/v1/bodycams/commands", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _wait_status(rig: Rig, command_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        return next(
            (c for c in await _commands(rig) if c["id"] == command_id and c["status"] == status), None
        )

    return await eventually(probe, what=f"command {command_id} {status}")


async def test_remote_start_stop_acked_and_audited(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    cam = await rig.add_cam("bwc-1", 50.0)
    sup = rig.clients[Role.supervisor]
    reason = "shots reported at 5th and Main, officer on scene"
    r = await sup.post(
        "/api/v1/bodycams/bwc-1/commands", json={"command": "start_recording", "reason": reason}
    )
    assert r.status_code == 202, r.text
    cmd = r.json()
    assert cmd["status"] == "sent" and cmd["automatic"] is False and cmd["issued_by"] == "supervisor1"
    done = await _wait_status(rig, cmd["id"], "acked")
    assert cam.recording is True
    assert done["latency_s"] is not None and done["latency_s"] >= 0
    assert done["attempts"] == 1

    # the unit list shows it recording (an audited read of officer positions)
    r = await rig.clients[Role.officer].get("/api/v1/bodycams")
    assert r.status_code == 200
    (unit,) = [u for u in r.json()["items"] if u["device_id"] == "bwc-1"]
    assert unit["recording"] is True and unit["battery_pct"] == 80.0
    assert unit["lat"] == pytest.approx(33.5186 + 50 / 111_195.0)
    reads = await audit_rows(rig, "read_bodycam_units")
    assert reads and reads[0]["actor"] == "officer1"

    # stop
    r = await rig.clients[Role.admin].post(
        "/api/v1/bodycams/bwc-1/commands", json={"command": "stop_recording", "reason": "incident closed"}
    )
    assert r.status_code == 202
    await _wait_status(rig, r.json()["id"], "acked")
    assert cam.recording is False

    # every command and every acknowledgement is in the audit log, the command with its reason
    issued = await audit_rows(rig, "bodycam_command")
    assert {(a["actor"], a["purpose"]) for a in issued} == {
        ("supervisor1", reason),
        ("admin", "incident closed"),
    }
    acks = await audit_rows(rig, "bodycam_ack")
    assert {a["record_id"] for a in acks} == {cmd["id"], r.json()["id"]}
    assert all(a["actor"] == "device:bwc-1" for a in acks)
    # one applied acknowledgement per command; a redelivered copy (a bus redelivery or a retry that
    # crossed the first ack under load) is audited as an ignored duplicate, never applied twice
    assert sorted(a["record_id"] for a in acks if a["outcome"] == "ok") == sorted({cmd["id"], r.json()["id"]})
    assert {a["outcome"] for a in acks} <= {"ok", "ignored_duplicate"}


@pytest.mark.parametrize("backend", ["embedded"])
async def test_reason_required_roles_and_unknown_device(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    await rig.add_cam("bwc-2", start=False)
    url = "/api/v1/bodycams/bwc-2/commands"
    sup = rig.clients[Role.supervisor]
    r = await sup.post(url, json={"command": "start_recording"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"
    r = await sup.post(url, json={"command": "start_recording", "reason": ""})
    assert r.status_code == 422
    r = await sup.post(url, json={"command": "explode", "reason": "testing the device"})
    assert r.status_code == 422
    for role in (Role.officer, Role.analyst, Role.auditor):
        r = await rig.clients[role].post(url, json={"command": "start_recording", "reason": "I want to see"})
        assert r.status_code == 403, role
        assert r.json()["error"]["code"] == "forbidden"
    r = await sup.post(
        "/api/v1/bodycams/no-such-cam/commands", json={"command": "start_recording", "reason": "check"}
    )
    assert r.status_code == 404
    assert await _commands(rig) == []
    assert await audit_rows(rig, "bodycam_command") == []


@pytest.mark.parametrize("backend", ["embedded"])
async def test_command_roles_setting_narrows(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig(bodycam={"command_roles": ["admin"]})
    await rig.add_cam("bwc-3", start=False)
    body = {"command": "start_recording", "reason": "pursuit in progress"}
    r = await rig.clients[Role.supervisor].post("/api/v1/bodycams/bwc-3/commands", json=body)
    assert r.status_code == 403 and "bodycam.command_roles" in r.json()["error"]["message"]
    r = await rig.clients[Role.admin].post("/api/v1/bodycams/bwc-3/commands", json=body)
    assert r.status_code == 202


async def test_device_that_never_acks_times_out_after_bounded_retries(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig(bodycam={"ack_timeout_s": 0.3, "max_attempts": 3})
    cam = await rig.add_cam("bwc-4", never_ack=True)
    r = await rig.clients[Role.admin].post(
        "/api/v1/bodycams/bwc-4/commands", json={"command": "start_recording", "reason": "officer down call"}
    )
    cmd = r.json()
    done = await _wait_status(rig, cmd["id"], "timeout")
    assert done["attempts"] == 3 and done["acked_at"] is None
    # the device got every attempt, obeyed once and took the re-sends as repeats
    assert cam.recording is True and len(cam.executed) == 1
    assert cam.verdicts["execute"] == 1 and cam.verdicts["repeat"] == 2
    timeouts = await audit_rows(rig, "bodycam_command_timeout")
    assert [t["record_id"] for t in timeouts] == [cmd["id"]]
    # a later acknowledgement changes nothing (audited as late)
    from rtcc.events import DeviceCommandAck

    late = DeviceCommandAck(source="bwc-4", device="bwc-4", command_id=cmd["id"], nonce=cam.executed[0].nonce)
    assert await rig.link.send(cam, [late])

    async def late_audited() -> list[dict[str, Any]]:
        return [a for a in await audit_rows(rig, "bodycam_ack") if a["outcome"] == "ignored_late"]

    await eventually(late_audited, what="late ack audited")
    assert (await _wait_status(rig, cmd["id"], "timeout"))["acked_at"] is None


@pytest.mark.parametrize("backend", ["embedded"])
async def test_poll_needs_a_body_cam_key(make_rig: MakeRig) -> None:
    from rtcc.roles import DeviceType

    rig: Rig = await make_rig()
    url = rig.run.url + "api/v1/bodycams/commands/poll"
    r = await rig.http.post(url, json={"device_id": "bwc-x", "wait_s": 0})
    assert r.status_code == 401
    key = await rig.run.center.provision_device("lpr-1", DeviceType.plate_camera, "lpr", 33.5, -86.8)
    r = await rig.http.post(
        url, json={"device_id": "lpr-1", "wait_s": 0}, headers={"authorization": f"Device {key}"}
    )
    assert r.status_code == 403
    r = await rig.http.post(url, json={})
    assert r.status_code == 422
