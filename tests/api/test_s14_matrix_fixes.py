"""Two findings of the route x role walk: huge page offsets were a 500, and an admin could type a body
cam's position (an officer's location, which steers automatic activations) as if it were surveyed."""

from __future__ import annotations

import httpx
import pytest

from rtcc.roles import Role
from tests.api.test_error_envelope import assert_envelope
from tests.conftest import Running

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


@pytest.mark.parametrize(
    ("path", "param"),
    [("/api/v1/audit", "offset"), ("/api/v1/audit", "before_seq"), ("/api/v1/hotlists/entries", "offset")],
)
@pytest.mark.parametrize("value", ["9" * 20, str(2**63)])
async def test_huge_paging_numbers_are_refused_not_a_500(
    clients: dict[Role, httpx.AsyncClient], path: str, param: str, value: str
) -> None:
    r = await clients[Role.admin].get(path, params={param: value})
    assert_envelope(r, 422, "validation_failed")


async def test_a_moving_device_has_no_typed_position(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]
    r = await admin.post(
        "/api/v1/devices",
        json={"id": "bwc-01", "type": "bodycam", "name": "unit 1", "lat": 33.5301234, "lon": -86.80},
    )
    assert r.status_code == 201, r.text
    body = {"lat": 33.5186, "lon": -86.81, "reason": "moved it by hand"}
    r = await admin.put("/api/v1/devices/bwc-01/position", json=body)
    assert_envelope(r, 422, "validation_failed")
    assert "heartbeat" in r.json()["error"]["message"]
    dev = (await admin.get("/api/v1/devices/bwc-01")).json()
    assert dev["lat"] == pytest.approx(33.5301234)

    r = await admin.post(
        "/api/v1/devices",
        json={"id": "ac-01", "type": "acoustic_sensor", "name": "pole 1", "lat": 33.52, "lon": -86.80},
    )
    assert r.status_code == 201, r.text
    r = await admin.put("/api/v1/devices/ac-01/position", json=body)  # a fixed sensor: surveyed
    assert r.status_code == 200, r.text
