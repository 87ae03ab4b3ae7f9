"""Body-cam activation latency: gunshot incident → activation acknowledged by the devices.

Starts a center in this process (embedded: SQLite + in-process bus, or
production: PostgreSQL/PostGIS + NATS JetStream, ``--mode production``) with
the recorder, health and bodycam processors, and ``rtcc bodycam simulate`` in
a subprocess: ``--units`` simulated body cams (500 by default) provisioned
through the API, scattered uniformly over a ``--spread-m`` square, each
listening on the HTTPS long-poll (and MQTT with ``--mqtt``) and
acknowledging after ``--ack-delay`` seconds. The automatic policy is turned on
(gunshot incidents, ``--radius`` metres), then ``--incidents`` gunshot
incidents are published on the bus one after another at random places; each
waits until every command it caused is acknowledged (or timed out).

A final *storm* incident uses a radius covering the whole area, so every unit
is told to record at once.

Figures (milliseconds, per activation): from the incident's publication on
the bus to the acknowledgement being applied by the center (``acked_at``),
p50 / p90 / p99 / max, for the incidents and for the storm; counts of
activations and timeouts. Written to ``bench/results/bodycam_activation.jsonl``.

Usage::

    python bench/bodycam_activation.py --units 500 --incidents 40
    eval "$(bash scripts/services.sh start)"
    python bench/bodycam_activation.py --mode production
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ADMIN_PASSWORD, SECRET, rtcc_exe, write_result

from rtcc.app import Center
from rtcc.bodycam.fleet import offset
from rtcc.events import GunshotIncident, Position
from rtcc.settings import Settings
from rtcc.store.tables_bodycams import BodycamCommand

LAT0, LON0 = 33.5186, -86.8104


def _settings(data_dir: Path, mode: str) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "server": {"host": "127.0.0.1", "port": 0, "max_ingest_batch": 1000},
        "security": {"secret_key": SECRET, "admin_password": ADMIN_PASSWORD},
        "sim": {"enabled": False},
        "bodycam": {"ack_timeout_s": 10.0, "max_attempts": 3},
    }
    if mode == "production":
        base["mode"] = "production"
        base["database"] = {"url": os.environ["RTCC_BENCH_PG_URL"]}
        base["bus"] = {
            "engine": "nats",
            "nats_url": os.environ.get("RTCC_TEST_NATS_URL", "nats://127.0.0.1:4222"),
            "stream": f"RTCCB{uuid.uuid4().hex[:8].upper()}",
        }
    return Settings(**base)


def _reset_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
        c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    eng.dispose()


def _pcts(ms: list[float]) -> dict[str, float | int]:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p90_ms": round(float(np.percentile(a, 90)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "max_ms": round(float(a.max()), 1),
    }


async def _incident(center: Center, lat: float, lon: float, timeout_s: float) -> tuple[list[float], int, int]:
    """Publish one incident; (latencies ms, timeouts, commands) once all its commands are settled."""
    from sqlalchemy import select

    assert center.bus is not None and center.store is not None
    store = center.store
    ev = GunshotIncident(
        source="bench",
        pos=Position(lat=lat, lon=lon),
        ellipse_major_m=15,
        ellipse_minor_m=8,
        rounds=3,
        label="gunshot",
        confidence=0.95,
        sensors=["bench"],
    )
    ref = f"gunshot_incident:{ev.incident_id}"
    applied0 = center.metrics.get("bodycam_triggers", trigger="gunshot_incident", result="applied")
    t0 = datetime.now(UTC)
    await center.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
    deadline = time.monotonic() + timeout_s
    query = select(BodycamCommand.status, BodycamCommand.acked_at).where(BodycamCommand.trigger_ref == ref)
    rows: list[Any] = []
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if center.metrics.get("bodycam_triggers", trigger="gunshot_incident", result="applied") <= applied0:
            continue  # the processor has not finished issuing this incident's commands
        rows = await store.read(lambda s: list(s.execute(query)))
        if all(r[0] != "sent" for r in rows):
            break
    lat_ms = [(r[1] - t0).total_seconds() * 1000 for r in rows if r[0] == "acked" and r[1] is not None]
    return lat_ms, sum(r[0] == "timeout" for r in rows), len(rows)


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="rtcc-bench-bwc-"))
    if args.mode == "production":
        _reset_pg(os.environ["RTCC_BENCH_PG_URL"])
    center = Center(
        _settings(tmp / "data", args.mode),
        processors=("recorder", "health", "bodycam") + (("ingest",) if args.mqtt else ()),
        auto_migrate=True,
    )
    await center.start()
    sim = None
    try:
        url = center.base_url
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            r = await http.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            token = r.json()["token"]
            r = await http.put(
                "/api/v1/bodycams/policy",
                json={"enabled": True, "triggers": ["gunshot_incident"], "radius_m": args.radius},
                headers={"authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
        cmd = [
            rtcc_exe(),
            "bodycam",
            "simulate",
            "--center",
            url,
            "--provision",
            "--units",
            str(args.units),
            "--keys",
            str(tmp / "keys.json"),
            "--ack-delay",
            str(args.ack_delay),
            "--spread-m",
            str(args.spread_m),
            "--lat",
            str(LAT0),
            "--lon",
            str(LON0),
            "--heartbeat-s",
            "60",
            "--walk-mps",
            "0",
            "--seed",
            str(args.seed),
        ] + (["--mqtt", args.mqtt] if args.mqtt else [])
        sim = await asyncio.create_subprocess_exec(
            *cmd,
            env={**os.environ, "RTCC_PASSWORD": ADMIN_PASSWORD},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        # wait until every unit has reported its position
        from sqlalchemy import func, select

        from rtcc.store.tables import Device

        assert center.store is not None
        store = center.store
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            seen = await store.read(
                lambda s: s.scalar(
                    select(func.count())
                    .select_from(Device)
                    .where(Device.type == "bodycam", Device.last_seen_at.is_not(None))
                )
            )
            if seen >= args.units:
                break
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError(f"only {seen} of {args.units} body cams reported")
        await asyncio.sleep(25.0)  # every long-poll cycles once (the first met the provisioning rush)
        lat_ms: list[float] = []
        timeouts = commands = 0
        h = args.spread_m / 2 - args.radius
        for _ in range(args.incidents):
            lat, lon = offset(LAT0, LON0, rng.uniform(-h, h), rng.uniform(-h, h))
            ms, to, n = await _incident(center, lat, lon, 60)
            lat_ms += ms
            timeouts += to
            commands += n
        # storm: every unit at once
        r_all = args.spread_m
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            r = await http.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            await http.put(
                "/api/v1/bodycams/policy",
                json={"enabled": True, "triggers": ["gunshot_incident"], "radius_m": r_all},
                headers={"authorization": f"Bearer {r.json()['token']}"},
            )
        storm_ms, storm_to, storm_n = await _incident(center, LAT0, LON0, 120)
        write_result(
            "bodycam_activation",
            {
                "incidents": {**_pcts(lat_ms), "commands": commands, "timeouts": timeouts},
                "storm": {**_pcts(storm_ms), "commands": storm_n, "timeouts": storm_to},
            },
            {
                "mode": args.mode,
                "units": args.units,
                "incidents": args.incidents,
                "radius_m": args.radius,
                "spread_m": args.spread_m,
                "ack_delay_s": args.ack_delay,
                "mqtt": bool(args.mqtt),
                "transport": "https long-poll" + (" + mqtt" if args.mqtt else ""),
                "center": "in the bench process; devices in an `rtcc bodycam simulate` subprocess",
                "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            },
        )
    finally:
        if sim is not None and sim.returncode is None:
            sim.terminate()
            out, _ = await sim.communicate()
            if args.verbose:
                print(out.decode()[-2000:])
        await center.stop()
        if args.mode == "production":
            import nats

            nc = await nats.connect(os.environ.get("RTCC_TEST_NATS_URL", "nats://127.0.0.1:4222"))
            with contextlib.suppress(Exception):
                await nc.jetstream().delete_stream(center.settings.bus.stream)
            await nc.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("embedded", "production"), default="embedded")
    p.add_argument("--units", type=int, default=500)
    p.add_argument("--incidents", type=int, default=40)
    p.add_argument("--radius", type=float, default=300.0)
    p.add_argument("--spread-m", type=float, default=3000.0)
    p.add_argument("--ack-delay", type=float, default=0.1)
    p.add_argument("--mqtt", default=None, help="host:port of the NATS MQTT listener (production)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--verbose", action="store_true")
    asyncio.run(main(p.parse_args()))
