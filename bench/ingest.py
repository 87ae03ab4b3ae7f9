"""Event ingest throughput: devices → (HTTPS | MQTT → JetStream) → bus → store.

Starts ``rtcc serve`` in a subprocess (embedded: SQLite + in-process bus;
production: PostgreSQL/PostGIS + NATS JetStream), registers devices, sends
pulses from this process and measures

* ``accept_eps`` — events per second until the last request was answered
  (HTTP) or the last message was acknowledged by the broker (MQTT QoS 1),
* ``stored_eps`` — events per second until the last one was in the store,

and writes them to ``bench/results/ingest.jsonl``.

Usage::

    python bench/ingest.py --mode embedded --transport http
    eval "$(bash scripts/services.sh start)"
    python bench/ingest.py --mode production --transport http
    python bench/ingest.py --mode production --transport mqtt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import ADMIN_PASSWORD, CenterProcess, center_env, free_port, rtcc_exe, write_result

from rtcc.events import Position, Pulse
from rtcc.store.tables import EventRecord

CENTRE = (33.5186, -86.8104)


def make_events(device: str, n: int) -> list[dict[str, Any]]:
    pos = Position(lat=CENTRE[0], lon=CENTRE[1], alt_m=8.0)
    now = datetime.now(UTC)
    return [
        Pulse(
            source=device,
            device=device,
            pos=pos,
            peak_db=100.0,
            snr_db=25.0,
            duration_ms=3.0,
            occurred_at=now,
        ).model_dump(mode="json")
        for _ in range(n)
    ]


async def register(center: CenterProcess, n: int) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=center.url, timeout=30) as c:
        r = await c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        c.headers["authorization"] = f"Bearer {r.json()['token']}"
        keys = {}
        for i in range(n):
            dev = f"bench-ac-{i:04d}"
            r = await c.post(
                "/api/v1/devices",
                json={"id": dev, "type": "acoustic_sensor", "lat": CENTRE[0], "lon": CENTRE[1]},
            )
            r.raise_for_status()
            keys[dev] = r.json()["key"]
        return keys


async def send_http(
    center: CenterProcess, keys: dict[str, str], total: int, batch: int, concurrency: int
) -> float:
    devices = list(keys)
    per_request = [(devices[i % len(devices)], batch) for i in range(total // batch)]
    payloads = [(dev, json.dumps({"events": make_events(dev, n)})) for dev, n in per_request]
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=center.url, timeout=60, limits=limits) as c:

        async def one(dev: str, body: str) -> None:
            async with sem:
                r = await c.post(
                    "/api/v1/ingest/events",
                    content=body,
                    headers={"authorization": f"Device {keys[dev]}", "content-type": "application/json"},
                )
                if r.status_code != 202:
                    raise RuntimeError(f"ingest refused: {r.status_code} {r.text[:300]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(d, b) for d, b in payloads))
        return time.perf_counter() - t0


def send_mqtt(mqtt_port: int, keys: dict[str, str], total: int, batch: int) -> float:
    import paho.mqtt.client as mqtt

    devices = list(keys)
    payloads = []
    for i in range(total // batch):
        dev = devices[i % len(devices)]
        env = {"device_id": dev, "key": keys[dev], "events": make_events(dev, batch)}
        payloads.append((f"rtcc/sensors/{dev}/pulse", json.dumps(env)))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(256)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError("MQTT connect failed")
    t0 = time.perf_counter()
    infos = [client.publish(topic, body, qos=1) for topic, body in payloads]
    for info in infos:
        info.wait_for_publish(60)
    elapsed = time.perf_counter() - t0
    client.loop_stop()
    client.disconnect()
    return elapsed


def wait_stored(url: str, total: int, t_start: float, timeout: float = 600) -> float:
    eng = create_engine(url)
    try:
        while True:
            with eng.connect() as c:
                n = int(
                    c.execute(
                        select(func.count()).select_from(EventRecord).where(EventRecord.type == "pulse")
                    ).scalar_one()
                )
            if n >= total:
                return time.perf_counter() - t_start
            if time.perf_counter() - t_start > timeout:
                raise RuntimeError(f"only {n}/{total} events stored after {timeout} s")
            time.sleep(0.05)
    finally:
        eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["embedded", "production"], default="embedded")
    ap.add_argument("--transport", choices=["http", "mqtt"], default="http")
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--batch", type=int, default=100, help="events per request / MQTT message")
    ap.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight")
    ap.add_argument("--pg-url", default=os.environ.get("RTCC_BENCH_PG_URL"))
    ap.add_argument("--nats-url", default=os.environ.get("RTCC_TEST_NATS_URL"))
    ap.add_argument("--mqtt-port", type=int, default=int(os.environ.get("RTCC_TEST_MQTT_PORT", "1883")))
    args = ap.parse_args()
    if args.transport == "mqtt" and args.mode != "production":
        ap.error("MQTT arrives through the NATS server: use --mode production")

    tmp = Path(tempfile.mkdtemp(prefix="rtcc-bench-"))
    port = free_port()
    db_url = None
    admin_engine = None
    db_name = None
    stream = f"RTCCB{uuid.uuid4().hex[:8].upper()}"
    if args.mode == "production":
        if not args.pg_url or not args.nats_url:
            ap.error("production mode needs --pg-url and --nats-url (scripts/services.sh prints them)")
        db_name = f"rtcc_b_{uuid.uuid4().hex[:10]}"
        admin_engine = create_engine(
            make_url(args.pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin_engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{db_name}"'))
        db_url = make_url(args.pg_url).set(database=db_name).render_as_string(hide_password=False)
    env = center_env(
        tmp,
        port,
        database_url=db_url,
        nats_url=args.nats_url if args.mode == "production" else None,
        stream=stream,
    )
    center = CenterProcess(env=env, command=[rtcc_exe(), "serve"], port=port, data_dir=tmp)
    store_url = db_url or f"sqlite:///{tmp / 'rtcc.db'}"
    try:
        center.start()
        keys = asyncio.run(register(center, args.devices))
        total = (args.events // args.batch) * args.batch
        t0 = time.perf_counter()
        if args.transport == "http":
            accept_s = asyncio.run(send_http(center, keys, total, args.batch, args.concurrency))
        else:
            accept_s = send_mqtt(args.mqtt_port, keys, total, args.batch)
        stored_s = wait_stored(store_url, total, t0)
        figures = {
            "events": total,
            "accept_s": round(accept_s, 3),
            "accept_eps": round(total / accept_s),
            "stored_s": round(stored_s, 3),
            "stored_eps": round(total / stored_s),
        }
        write_result(
            "ingest",
            figures,
            {
                "mode": args.mode,
                "transport": args.transport,
                "devices": args.devices,
                "batch": args.batch,
                "concurrency": args.concurrency if args.transport == "http" else None,
                "store": "postgresql" if db_url else "sqlite",
                "bus": "nats" if args.mode == "production" else "memory",
            },
        )
    finally:
        center.stop()
        if admin_engine is not None and db_name is not None:
            with admin_engine.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin_engine.dispose()
        if args.mode == "production" and args.nats_url:
            asyncio.run(_delete_stream(args.nats_url, stream))


async def _delete_stream(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


if __name__ == "__main__":
    main()
