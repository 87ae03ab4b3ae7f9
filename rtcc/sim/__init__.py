"""The simulated city: devices that talk to the center exactly as real ones do.

What it simulates
-----------------
A square of downtown Birmingham, Alabama (``sim.extent_m`` on a side around
``sim.center_lat``/``sim.center_lon``; 3.2 km, about 4 square miles, by
default) with

* **acoustic sensors** (``ac-0001``…) on a jittered grid at
  ``sim.sensors_per_sq_mile`` (ShotSpotter deploys 15–20), on rooftops and
  poles 6–12 m up, GPS-locked with PPS clocks;
* **fixed plate cameras** (``lpr-001``…) at intersections of the arterials,
  each looking along its road;
* **patrol units** (``unit-01``…, ``sim.patrol_units``) driving the
  arterials at 8–15 m/s and turning at intersections; each officer wears a
  **body cam** (``bwc-01``…) and every third car carries a **mobile plate
  camera** (``lpr-m01``…).

The streets follow the real downtown grid (rotated about 29° from north:
avenues ENE–WSW, numbered streets NNW–SSE), drawn in a local metric
projection (:class:`~rtcc.sim.geometry.LocalProjection`).

How it talks to the center
--------------------------
Only through the public device API: each device is provisioned once through
an injected ``provision`` callable that returns its key, then posts its
events to ``POST /api/v1/ingest/events`` with ``Authorization: Device
<key>``. When the center is unreachable or answers 5xx/429 the events wait
in a bounded backlog and are retried with backoff; the counters say how many
were sent, accepted, rejected, held and dropped.

Running it
----------
::

    from rtcc.settings import SimSettings
    from rtcc.sim import SimRunner, build_city

    settings = SimSettings(enabled=True, speedup=10)
    city = build_city(settings)
    async with httpx.AsyncClient() as http:
        runner = SimRunner(city, provision=provision, http=http,
                           base_url="http://127.0.0.1:8470/", settings=settings,
                           truth_path=Path("data/sim-truth.jsonl"))
        await runner.start()      # provision, then heartbeat every heartbeat_s/speedup s
        ...
        await runner.stop()

``rtcc demo`` does this against the embedded center. The city is a pure
function of the settings and its seed; ground truth (device layout, every
unit's position at every tick) is appended to ``truth_path`` as JSON lines
(:mod:`rtcc.sim.truth`).

Extending it
------------
Gunfire, traffic past plate cameras and community cameras plug in through
:meth:`SimRunner.add_source` (events per tick), :meth:`SimRunner.add_task`
(a coroutine with its own timing, sending with :meth:`SimRunner.submit`)
and :meth:`SimRunner.add_devices` (more devices to provision).

Modules
-------
``city``        :func:`build_city`, :class:`City`, :class:`SimDevice`, map layers
``roads``       Birmingham's arterials and the drivable road graph
``units``       patrol units' movement
``geometry``    projection, polylines, clipping
``heartbeats``  each device type's heartbeat
``delivery``    HTTP posting, backlog and counters
``runner``      :class:`SimRunner`
``truth``       ground-truth JSON lines
"""

from rtcc.sim.city import City, SimDevice, build_city
from rtcc.sim.delivery import SimCounters
from rtcc.sim.runner import EventSource, Provision, SimRunner, Tick

__all__ = [
    "City",
    "EventSource",
    "Provision",
    "SimCounters",
    "SimDevice",
    "SimRunner",
    "Tick",
    "build_city",
]
