"""Each sensor's pulse of every round of an incident, and so its audio per round.

A burst is one incident; a reviewer must be able to play any round of any sensor, not just the
first. Rounds located in a later window and a straggler absorbed into a located round must land in
the slot of their round (``round_pulses``), and the API serves each (sensor, round)'s own audio.
"""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rtcc.acoustic.incidents import list_incidents
from rtcc.acoustic.pipeline import IncidentOutcome
from rtcc.events import Pulse
from rtcc.roles import Role
from rtcc.store.tables import GunshotIncidentRow
from tests.acoustic.test_pipeline_helpers import (
    bang_flac,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


def _own_audio(pulses: list[Pulse], seed: int) -> list[Pulse]:
    """Every pulse with audio of its own (different bytes per sensor and round)."""
    return [p.model_copy(update={"audio_flac_b64": bang_flac(seed=seed + i)}) for i, p in enumerate(pulses)]


async def test_later_rounds_and_a_late_pulse_land_in_their_round(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.6)
    store = center.center.store
    assert store is not None
    src, t0 = (60.0, 150.0), datetime.now(UTC) - timedelta(seconds=5)
    late, deaf = "ac-t09", "ac-t01"  # late: round 1 arrives after it is located; deaf: misses round 3
    first = _own_audio(shot_pulses(arr, src, t_emit=t0), 1)
    await post_pulses(center, arr, [p for p in first if p.device != late])

    async def outcomes() -> list[IncidentOutcome] | None:
        return list(pipe.outcomes) or None

    (out,) = await eventually(outcomes, what="the first round's incident")
    iid = out.incident.incident_id

    def row() -> GunshotIncidentRow:
        (r,) = store.run(lambda s: list_incidents(s))
        return r

    # the straggler: absorbed into round 1 (not located again) and stored in its slot
    straggler = next(p for p in first if p.device == late)
    await post_pulses(center, arr, [straggler])

    async def absorbed() -> bool:
        return (row().round_pulses or {}).get(late) == [str(straggler.event_id)]

    await eventually(absorbed, what="the late pulse in round 1's slot")

    # two more rounds in a later window join the incident; the deaf sensor misses the third
    later = _own_audio(shot_pulses(arr, src, t_emit=t0, rounds=(0.31, 0.64)), 100)
    later = [p for i, p in enumerate(later) if not (p.device == deaf and i % 2 == 1)]
    await post_pulses(center, arr, later)

    async def three() -> GunshotIncidentRow | None:
        r = row()
        return r if r.rounds == 3 else None

    done = await eventually(three, what="the later rounds joining the incident")
    by = {(p.device, 1): p for p in first}
    for p in later:  # sensor by sensor, round 2 before round 3
        by[(p.device, 2 if (p.device, 2) not in by else 3)] = p
    ids = {k: str(p.event_id) for k, p in by.items()}
    assert done.round_pulses == {s: [ids.get((s, n)) for n in (1, 2, 3)] for s in arr.xy}
    assert done.round_audio == {s: [1, 2] if s == deaf else [1, 2, 3] for s in arr.xy}
    assert done.pulses == {s: ids[(s, 1)] for s in arr.xy}  # the first round's, as before

    officer = clients[Role.officer]

    async def flac(sensor: str, n: int) -> bytes | None:
        r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": sensor, "round": n})
        return r.content if r.status_code == 200 else None  # the recorder writes the pulse shortly after

    for sensor, n in ((late, 1), (late, 3), (deaf, 2)):
        got = await eventually(functools.partial(flac, sensor, n), what=f"{sensor}'s round {n}")
        assert got == base64.b64decode(by[(sensor, n)].audio_flac_b64 or "")
    r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": deaf, "round": 3})
    assert r.status_code == 404 and r.json()["error"]["details"]["rounds"] == [1, 2]
