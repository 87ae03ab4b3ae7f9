"""``/analytics``: a ``tz`` naming a folder of the zone database is a 422, not a 500.

Audit finding (session 14): ``ZoneInfo("America")`` raises IsADirectoryError (an OSError), which
``zone()`` did not catch, so ``GET /api/v1/analytics/hotspots?tz=America`` answered 500.
"""

from __future__ import annotations

import httpx
import pytest

from rtcc.roles import Role
from tests.conftest import Running


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_time_zone_folder_is_a_validation_error(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst = clients[Role.analyst]
    for path in ("/api/v1/analytics/hotspots", "/api/v1/analytics/recommendations"):
        for tz in ("America", "__pycache__", "Mars/Olympus", "America/"):
            r = await analyst.get(path, params={"tz": tz})
            assert r.status_code == 422, (path, tz, r.text)
            err = r.json()["error"]
            assert err["code"] == "validation_failed" and "IANA" in err["message"], (path, tz, r.text)
    r = await analyst.get("/api/v1/analytics/hotspots", params={"tz": "America/Los_Angeles"})
    assert r.status_code == 200, r.text
