"""Gunshot alert latency: last pulse received → alert on the WebSocket, with 1,000 sensors.

Starts ``rtcc serve`` in a subprocess (embedded: SQLite + in-process bus, or
production: PostgreSQL/PostGIS + NATS JetStream), registers ``--sensors``
acoustic sensors on a jittered grid at 17 per square mile, signs in an admin
on the live WebSocket (alerts only), then fires ``--shots`` single shots one
after another at random positions inside the array. Each shot is propagated
with the simulator's physics (:mod:`rtcc.sim.gunfire`: real waveform, delay,
spreading, absorption, blocked paths, echoes, 50 µs clock jitter, street
noise) and every sensor that hears it posts its pulse (with FLAC audio)
concurrently through the HTTPS ingest, one request per sensor.

Figures (milliseconds):

* ``from_last_sent_ms`` — from the moment the last pulse request of a shot
  was *sent* to the alert arriving on the WebSocket (an upper bound: it
  includes the HTTP transfer and ingest of that request);
* ``from_last_accepted_ms`` — **the figure**: from the last ``202 Accepted``
  answer (the pulse is on the bus by then) among the sensors within the
  pipeline's hearing range of the shot (the pulses its window waits for) to
  the alert. Sensors a little farther (up to ``--range-m``) report too; they
  arrive as stragglers and are counted with the located round.

Either kind of alert counts (``gunshot``, or ``gunshot_review`` when the
classifier puts the shot in the review band or is missing); the result says
how many of each. Written to ``bench/results/acoustic_latency.jsonl``.

``--flood-sensors N --flood-hz R``: meanwhile N sensors (the first registered)
each post R unrelated impulses a second (a faulty microphone), in batches every
0.1 s, for the whole run; ``--no-flood-guard`` lifts the pipeline's per-sensor
rate rule (``acoustic.max_pulse_rate_hz``) to show what it protects.

Usage::

    python bench/acoustic_latency.py --sensors 1000 --shots 100
    eval "$(bash scripts/services.sh start)"
    python bench/acoustic_latency.py --mode production
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ADMIN_PASSWORD, CenterProcess, center_env, free_port, rtcc_exe, write_result

from rtcc.settings import SimSettings
from rtcc.sim.city import SQ_M_PER_SQ_MILE, City, SimDevice, build_city
from rtcc.sim.gunfire import Gunfire, Propagation, Scenario


def city_for(sensors: int, density: float, seed: int) -> City:
    """The simulated city sized so that ``density`` sensors per square mile make about ``sensors``."""
    extent = math.sqrt(sensors / density * SQ_M_PER_SQ_MILE)
    return build_city(
        SimSettings(extent_m=extent, sensors_per_sq_mile=density, patrol_units=0, seed=seed),
        name="bench",
    )


async def flood(http: httpx.AsyncClient, d: SimDevice, key: str, args: argparse.Namespace) -> None:
    """``d`` posts ``--flood-hz`` unrelated impulses a second, every 0.1 s, until cancelled."""
    rng = random.Random(d.id)
    pos = {"lat": d.lat, "lon": d.lon, "alt_m": d.attributes.get("alt_m")}
    per_batch = max(1, round(args.flood_hz / 10))
    while True:
        now = datetime.now(UTC)
        evs = [
            {
                "type": "pulse",
                "source": d.id,
                "device": d.id,
                "occurred_at": (now - timedelta(milliseconds=rng.uniform(0.0, 100.0))).isoformat(),
                "pos": pos,
                "peak_db": rng.uniform(70.0, 110.0),
                "snr_db": rng.uniform(6.0, 40.0),
                "duration_ms": 5.0,
            }
            for _ in range(per_batch)
        ]
        await http.post(
            "/api/v1/ingest/events", json={"events": evs}, headers={"authorization": f"Device {key}"}
        )
        await asyncio.sleep(0.1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    city = city_for(args.sensors, args.density, args.seed)
    sites = city.sensors
    # sensors report within the pipeline's hearing range (1 km): the last of them closes the window
    gun = Gunfire(city, seed=args.seed, propagation=Propagation(range_m=args.range_m))
    data_dir = Path(tempfile.mkdtemp(prefix="rtcc-bench-acoustic-"))
    port = free_port()
    env = center_env(
        data_dir,
        port,
        database_url=args.database_url,
        nats_url=args.nats_url,
        stream=f"RTCCB{uuid.uuid4().hex[:8].upper()}",
    )
    if args.no_flood_guard:
        env["RTCC_ACOUSTIC__MAX_PULSE_RATE_HZ"] = "10000"
        env["RTCC_ACOUSTIC__MAX_PULSE_BURST"] = "100000"
    center = CenterProcess(env, [rtcc_exe(), "serve"], port, data_dir)
    center.start()
    lat_sent: list[float] = []
    lat_acc: list[float] = []
    lat_all: list[float] = []
    kinds: dict[str, int] = {}
    missed = 0
    statuses: dict[str, int] = {}
    try:
        async with httpx.AsyncClient(
            base_url=center.url, timeout=60, limits=httpx.Limits(max_connections=64, keepalive_expiry=1.0)
        ) as http:
            r = await http.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            r.raise_for_status()
            token = r.json()["token"]
            auth = {"authorization": f"Bearer {token}"}
            keys: dict[str, str] = {}
            sem = asyncio.Semaphore(16)

            async def register(d: SimDevice) -> None:
                body = {
                    "id": d.id,
                    "type": "acoustic_sensor",
                    "name": d.name,
                    "lat": d.lat,
                    "lon": d.lon,
                    "alt_m": d.attributes.get("alt_m"),
                }
                async with sem:
                    resp = await http.post("/api/v1/devices", headers=auth, json=body)
                resp.raise_for_status()
                keys[d.id] = resp.json()["key"]

            await asyncio.gather(*(register(d) for d in sites))
            print(f"{len(keys)} sensors registered", file=sys.stderr)
            await asyncio.sleep(args.registry_wait_s)  # the pipeline reloads the sensor registry
            flooders = [
                asyncio.create_task(flood(http, d, keys[d.id], args)) for d in sites[: args.flood_sensors]
            ]
            inner = city.half_m - 800.0  # shots inside the array: every direction covered
            ws_url = center.url.replace("http", "ws") + "api/v1/ws?types=alert"
            arrivals: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
            async with websockets.connect(ws_url, additional_headers=auth, max_size=2**22) as ws:
                json.loads(await ws.recv())

                async def reader() -> None:
                    while True:
                        msg = json.loads(await ws.recv())
                        if msg.get("kind") == "event":
                            arrivals.put_nowait((time.perf_counter(), msg["event"]))

                task = asyncio.create_task(reader())
                try:
                    for i in range(args.shots + args.warmup):
                        x, y = rng.uniform(-inner, inner), rng.uniform(-inner, inner)
                        wf = rng.choice(["gunshot_9mm", "gunshot_40cal", "gunshot_45cal"])
                        pulses = gun.fire(
                            Scenario("gunshot", wf, x, y, [0.0], 148.0), datetime.now(UTC), None
                        )
                        by: dict[str, list[dict[str, Any]]] = {}
                        for p in pulses:
                            by.setdefault(p.device, []).append(p.model_dump(mode="json"))
                        sent: list[float] = []
                        answered: list[float] = []
                        needed: list[float] = []  # answers for sensors within the hearing range
                        near = {
                            d.id
                            for d in sites
                            if math.dist(city.to_xy(d.lat, d.lon), (x, y)) <= args.hearing_range_m
                        }

                        async def post(
                            sid: str,
                            evs: list[dict[str, Any]],
                            sent: list[float] = sent,
                            answered: list[float] = answered,
                            needed: list[float] = needed,
                            near: set[str] = near,
                        ) -> None:
                            sent.append(time.perf_counter())
                            resp = await http.post(
                                "/api/v1/ingest/events",
                                json={"events": evs},
                                headers={"authorization": f"Device {keys[sid]}"},
                            )
                            answered.append(time.perf_counter())
                            if sid in near:
                                needed.append(answered[-1])
                            assert resp.status_code == 202, resp.text

                        await asyncio.gather(*(post(s, e) for s, e in by.items()))
                        try:
                            at, ev = await asyncio.wait_for(arrivals.get(), args.timeout_s)
                        except TimeoutError:
                            missed += 1
                            print(f"shot {i}: no alert within {args.timeout_s} s", file=sys.stderr)
                            continue
                        if i >= args.warmup:
                            lat_sent.append((at - max(sent)) * 1000)
                            lat_acc.append((at - max(needed or answered)) * 1000)
                            lat_all.append((at - max(answered)) * 1000)
                            kinds[ev["kind"]] = kinds.get(ev["kind"], 0) + 1
                        await asyncio.sleep(args.gap_s)
                        while not arrivals.empty():  # a late extra alert (should not happen)
                            arrivals.get_nowait()
                            kinds["extra"] = kinds.get("extra", 0) + 1
                finally:
                    task.cancel()
                    for t in (task, *flooders):
                        t.cancel()
                        with contextlib.suppress(BaseException):
                            await t
            stored = (await http.get("/api/v1/gunshots", headers=auth, params={"limit": 1000})).json()[
                "items"
            ]
            for item in stored:
                statuses[item["status"]] = statuses.get(item["status"], 0) + 1
    finally:
        center.stop()

    def pct(v: list[float], q: float) -> float | None:
        return round(float(np.percentile(v, q)), 1) if v else None

    return {
        "sensors": len(sites),
        "shots": args.shots,
        "alerts": len(lat_sent),
        "missed": missed,
        "missed_note": "no alert within --timeout-s: classified below review_above, or not located",
        "incidents_by_status": statuses,
        "incidents_stored": sum(statuses.values()),
        "alert_kinds": kinds,
        "pulses_per_shot_note": f"every sensor within {args.range_m:g} m whose SNR >= 12 dB reports",
        "from_last_sent_ms": {
            "p50": pct(lat_sent, 50),
            "p90": pct(lat_sent, 90),
            "p99": pct(lat_sent, 99),
            "max": round(max(lat_sent), 1) if lat_sent else None,
        },
        "from_last_accepted_ms": {
            "p50": pct(lat_acc, 50),
            "p90": pct(lat_acc, 90),
            "p99": pct(lat_acc, 99),
            "max": round(max(lat_acc), 1) if lat_acc else None,
        },
        "from_last_accepted_any_ms": {
            "p50": pct(lat_all, 50),
            "p99": pct(lat_all, 99),
            "note": "from the last answer of any sensor, including those beyond the hearing range "
            "(stragglers the pipeline need not wait for; negative: the alert came first)",
        },
        "target_p99_ms": 250,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["embedded", "production"], default="embedded")
    ap.add_argument("--sensors", type=int, default=1000)
    ap.add_argument("--density", type=float, default=17.0, help="sensors per square mile")
    ap.add_argument("--shots", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--gap-s", type=float, default=0.5, help="pause after each alert, s")
    ap.add_argument("--timeout-s", type=float, default=10.0)
    ap.add_argument("--registry-wait-s", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--range-m", type=float, default=1100.0, help="sensors this close to a shot report it, m")
    ap.add_argument(
        "--hearing-range-m",
        type=float,
        default=1000.0,
        help="the pipeline's hearing_range_m (its default), m",
    )
    ap.add_argument(
        "--flood-sensors", type=int, default=0, help="sensors posting unrelated impulses meanwhile"
    )
    ap.add_argument("--flood-hz", type=float, default=500.0, help="impulses a second per flooding sensor")
    ap.add_argument("--no-flood-guard", action="store_true", help="lift acoustic.max_pulse_rate_hz")
    args = ap.parse_args()
    args.database_url = args.nats_url = None
    if args.mode == "production":
        import os

        args.database_url = os.environ["RTCC_TEST_PG_URL"]
        args.nats_url = os.environ["RTCC_TEST_NATS_URL"]
    figures = asyncio.run(run(args))
    params = {k: v for k, v in vars(args).items() if k not in ("database_url", "nats_url")}
    write_result("acoustic_latency", figures, params)


if __name__ == "__main__":
    main()
