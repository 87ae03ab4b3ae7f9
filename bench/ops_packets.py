"""Incident packets and the outcome table at scale: build time per packet, ledger and transparency queries.

Fills a fresh, migrated database with ``--incidents`` gunshot incidents over
the last ``--days`` days, ``--reads`` plate reads over the last 24 hours and
``--units`` body cams, all spread uniformly over a ``--extent-km`` square
around Birmingham, AL; ``--alerts`` alerts with outcomes on a fifth of them.
Then times

* ``--packets`` packet builds (:func:`rtcc.ops.packets.upsert_packet`, each in
  its own transaction: cameras, plate reads within R m and ±T min, units
  nearby, earlier incidents within R m in the last N days) at random recent
  incidents, with the default settings (300 m, ±10 min, 90 days);
* the outcome table (:func:`rtcc.ops.ledger.outcome_stats`) and the
  transparency data (:func:`rtcc.ops.transparency.collect`), 5 runs each.

PostgreSQL URL: ``RTCC_BENCH_PG_URL`` (a database ``<name>_ops`` is created
beside it and dropped at the end).

Usage::

    python bench/ops_packets.py --backend sqlite
    RTCC_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:54405/rtcc_bench \\
        python bench/ops_packets.py --backend postgres
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from rtcc.events import PlateRead, Position
from rtcc.ops.ledger import outcome_stats
from rtcc.ops.packets import PacketParams, upsert_packet
from rtcc.ops.transparency import collect
from rtcc.plates.reads import insert_reads
from rtcc.settings import RetentionSettings
from rtcc.store import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables import Device, GunshotIncidentRow
from rtcc.store.tables_ops import AlertRow, Case, OutcomeRow

CENTER = (33.5186, -86.8104)


def _point(rng: random.Random, extent_m: float) -> tuple[float, float]:
    n, e = rng.uniform(-extent_m / 2, extent_m / 2), rng.uniform(-extent_m / 2, extent_m / 2)
    return CENTER[0] + n / 111_195.0, CENTER[1] + e / (111_195.0 * math.cos(math.radians(CENTER[0])))


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def fill(
    store: Store, args: argparse.Namespace, rng: random.Random, now: datetime
) -> list[GunshotIncidentRow]:
    extent = args.extent_km * 1000
    incidents = []
    for _ in range(args.incidents):
        lat, lon = _point(rng, extent)
        incidents.append(
            GunshotIncidentRow(
                id=uuid.uuid4(),
                occurred_at=now - timedelta(seconds=rng.uniform(0, args.days * 86400)),
                lat=lat,
                lon=lon,
                ellipse_major_m=20,
                ellipse_minor_m=10,
                ellipse_angle_deg=0,
                rounds=rng.randint(1, 8),
                intervals_s=[],
                automatic=False,
                multiple_shooters=False,
                label="gunshot",
                confidence=0.9,
                sensors=["a", "b", "c"],
                pulses={},
                status="alerted",
            )
        )
    for i in range(0, len(incidents), 5000):
        store.run(lambda s, chunk=incidents[i : i + 5000]: s.add_all(chunk))
    reads = []
    for _ in range(args.reads):
        lat, lon = _point(rng, extent)
        reads.append(
            PlateRead(
                source="cam",
                device=f"cam-{rng.randrange(200)}",
                pos=Position(lat=lat, lon=lon),
                plate=f"B{rng.randrange(10**6):06d}",
                confidence=0.9,
                occurred_at=now - timedelta(seconds=rng.uniform(0, 86400)),
            )
        )
    for i in range(0, len(reads), 5000):
        store.run(lambda s, chunk=reads[i : i + 5000]: insert_reads(s, chunk))
    units = []
    for u in range(args.units):
        lat, lon = _point(rng, extent)
        units.append(
            Device(
                id=f"bc-{u}",
                type="bodycam",
                name=f"unit {u}",
                lat=lat,
                lon=lon,
                attributes={"recording": u % 3 == 0},
                status="online",  # units count as near only when online with a heartbeat position
                last_seen_at=now,
            )
        )
    store.run(lambda s: s.add_all(units))
    case = Case(id=uuid.uuid4(), number="B-1", title="bench", description="", status="open", opened_by="b")
    alerts, outcomes = [], []
    for i in range(args.alerts):
        at = now - timedelta(seconds=rng.uniform(0, args.days * 86400))
        aid = uuid.uuid4()
        alerts.append(
            AlertRow(
                id=aid,
                event_id=uuid.uuid4(),
                occurred_at=at,
                source="acoustic",
                kind="gunshot",
                severity="critical",
                title="Gunfire",
                lat=None,
                lon=None,
                ref_id=None,
                status="closed",
                history=[],
                created_at=at,
                updated_at=at,
            )
        )
        if i % 5 == 0:
            outcomes.append(
                OutcomeRow(
                    case_id=case.id,
                    ref_type="alert",
                    ref_id=str(aid),
                    category="arrest",
                    note="",
                    recorded_by="b",
                    recorded_at=at,
                )
            )
    store.run(lambda s: s.add(case))
    for i in range(0, len(alerts), 5000):
        store.run(lambda s, chunk=alerts[i : i + 5000]: s.add_all(chunk))
    store.run(lambda s: s.add_all(outcomes))
    return incidents


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--incidents", type=int, default=50_000)
    ap.add_argument("--reads", type=int, default=200_000)
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--alerts", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--extent-km", type=float, default=10.0)
    ap.add_argument("--packets", type=int, default=200)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)

    tmp = tempfile.TemporaryDirectory()
    admin_url = None
    if args.backend == "sqlite":
        url = f"sqlite:///{Path(tmp.name) / 'ops.db'}"
    else:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        base = make_url(os.environ["RTCC_BENCH_PG_URL"])
        name = f"{base.database}_ops"
        admin_url = base.set(database="postgres")
        eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
        eng = create_engine(url, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        eng.dispose()
    upgrade(url)
    store = Store(url)
    try:
        if store.is_postgres:
            from rtcc.store.partitions import ensure_event_partitions

            store.run(lambda s: ensure_event_partitions(s, (now - timedelta(days=2)).date(), 4))
        t0 = time.perf_counter()
        incidents = fill(store, args, rng, now)
        fill_s = time.perf_counter() - t0
        if store.is_postgres:
            with store.engine.connect() as c:
                from sqlalchemy import text

                c.execute(text("ANALYZE"))
                c.commit()
        params = PacketParams()
        targets = rng.sample(incidents, min(args.packets, len(incidents)))
        times: list[float] = []
        sizes: dict[str, list[int]] = {
            "plate_reads": [],
            "bodycams": [],
            "earlier_incidents": [],
            "cameras": [],
        }
        for inc in targets:
            at = now - timedelta(hours=rng.uniform(0, 23))  # recent: reads exist in the window
            t = time.perf_counter()
            row = store.run(
                lambda s, inc=inc, at=at: upsert_packet(
                    s, "gunshot", str(inc.id), inc.lat, inc.lon, at, params, now=now
                )
            )
            times.append((time.perf_counter() - t) * 1000)
            for k in sizes:
                sizes[k].append(len(row.body[k]["items"]))
                assert row.body[k]["note"] is None, row.body[k]["note"]
        ledger_ms, transp_ms = [], []
        for _ in range(5):
            t = time.perf_counter()
            store.run(lambda s: outcome_stats(s))
            ledger_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.run(lambda s: collect(s, RetentionSettings()))
            transp_ms.append((time.perf_counter() - t) * 1000)
    finally:
        store.close()
        if admin_url is not None:
            from sqlalchemy import create_engine, text

            eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            eng.dispose()
        tmp.cleanup()

    figures: dict[str, Any] = {
        "packet_build_ms_median": round(statistics.median(times), 2),
        "packet_build_ms_p95": round(_pct(times, 0.95), 2),
        "packet_build_ms_max": round(max(times), 2),
        "mean_items": {k: round(statistics.mean(v), 1) for k, v in sizes.items()},
        "outcome_stats_ms_median": round(statistics.median(ledger_ms), 1),
        "transparency_collect_ms_median": round(statistics.median(transp_ms), 1),
        "fill_s": round(fill_s, 1),
    }
    write_result(f"ops_packets_{args.backend}", figures, vars(args))


if __name__ == "__main__":
    main()
