"""The "plates" processor's throughput: reads stored, matched and their hits raised, per second.

Migrates a fresh database (SQLite file, or PostgreSQL beside ``RTCC_BENCH_PG_URL``),
imports a hotlist of ``--entries`` plates in one transaction (timed: the atomic
re-import), builds the processor's matcher (timed), then feeds ``--reads``
synthetic :class:`~rtcc.events.PlateRead` events to the processor's batch path
(:meth:`rtcc.plates.processor.PlatesProcessor.process_batch`, ``--batch`` reads
per transaction): each batch is stored with ``insert_reads``, matched, its hits
recorded (status ``verify``) and published as ``HotlistHit`` + ``Alert`` on the
in-process bus. ``--hit-share`` of the reads are plates on the list, half of
them misread with a look-alike character. Reported: reads/s through the
processor, hits, import and matcher build times, and the time from a BOLO being
stored beside the big list to it matching (only its source's matcher is rebuilt).
One process, one event loop.

Usage::

    python bench/plates_hits.py --backend sqlite --entries 1000000 --reads 200000
    RTCC_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:54402/rtcc_bench \\
        python bench/plates_hits.py --backend postgres --entries 1000000 --reads 200000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from plates_store import pg_database, plate

from rtcc.bus.memory import MemoryBus
from rtcc.events import PlateRead, Position
from rtcc.metrics import Metrics
from rtcc.plates.hotlist_import import Category, ParsedEntry
from rtcc.plates.hotlists import add_entry, replace_source
from rtcc.plates.matching import LOOKALIKE_CLASSES
from rtcc.plates.processor import PlatesProcessor
from rtcc.settings import Settings
from rtcc.store.db import Store
from rtcc.store.migrate import upgrade

SWAP = {c: [o for o in cls if o != c] for cls in LOOKALIKE_CLASSES for c in cls}


def lookalike(p: str, rng: random.Random) -> str:
    idx = [i for i, c in enumerate(p) if c in SWAP]
    if not idx:
        return p
    i = rng.choice(idx)
    return p[:i] + rng.choice(SWAP[p[i]]) + p[i + 1 :]


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    rng = random.Random(args.seed)
    store = Store(url, pool_size=4)
    if store.is_postgres:
        from rtcc.store.partitions import ensure_event_partitions

        today = datetime.now(UTC).date()
        store.run(lambda s: ensure_event_partitions(s, today - timedelta(days=1), 3, "plate_reads"))
    listed = sorted({plate(rng) for _ in range(args.entries)})
    entries = [ParsedEntry(i + 1, p, Category.stolen_vehicle) for i, p in enumerate(listed)]
    t = time.perf_counter()
    store.run(lambda s: replace_source(s, "bench-ncic", "ncic", entries))
    import_s = time.perf_counter() - t

    bus = MemoryBus()
    await bus.start()
    settings = Settings(plates={"lookalike_distance": args.max_distance})
    center = SimpleNamespace(settings=settings, store=store, bus=bus, metrics=Metrics(), services={})
    proc = PlatesProcessor(center, batch_size=args.batch)
    t = time.perf_counter()
    await proc.refresh(force=True)
    build_s = time.perf_counter() - t

    cams = [
        (f"lpr-{i:03d}", 41.88 + rng.uniform(-0.1, 0.1), -87.63 + rng.uniform(-0.1, 0.1)) for i in range(200)
    ]
    now = datetime.now(UTC)
    reads: list[PlateRead] = []
    for i in range(args.reads):
        cam, lat, lon = rng.choice(cams)
        if rng.random() < args.hit_share:
            p = rng.choice(listed)
            p = lookalike(p, rng) if rng.random() < 0.5 else p
        else:
            p = plate(rng)
        reads.append(
            PlateRead(
                source=cam,
                device=cam,
                occurred_at=now - timedelta(seconds=args.reads - i),
                pos=Position(lat=lat, lon=lon),
                plate=p,
                confidence=0.9,
            )
        )
    hits = 0
    t = time.perf_counter()
    for i in range(0, len(reads), args.batch):
        for per_read in await proc.process_batch(reads[i : i + args.batch]):
            hits += len(per_read)
    elapsed = time.perf_counter() - t

    # a BOLO added beside the big list: stored, the matchers refreshed, the plate matching
    bolo = "BOLO7Q"
    t = time.perf_counter()
    store.run(lambda s: add_entry(s, bolo, Category.custom, reason="bench", created_by="bench"))
    await proc.refresh()
    bolo_s = time.perf_counter() - t
    if [m.entry.plate for m in proc.matches(bolo)] != [bolo]:
        raise SystemExit("the BOLO does not match after the refresh")
    await bus.stop()
    store.close()
    return {
        "reads_per_s": round(len(reads) / elapsed),
        "hits": hits,
        "hotlist_import_s": round(import_s, 2),
        "matcher_build_s": round(build_s, 2),
        "bolo_add_to_matching_ms": round(bolo_s * 1000, 1),
        "entries": len(listed),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--hit-share", type=float, default=0.01)
    ap.add_argument("--max-distance", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="Keep the PostgreSQL database.")
    args = ap.parse_args()
    cleanup: Any = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'hits.db'}"
        else:
            base = os.environ.get("RTCC_BENCH_PG_URL")
            if not base:
                sys.exit("set RTCC_BENCH_PG_URL (scripts/services.sh prints it)")
            url, cleanup = pg_database(base, args.keep)
        try:
            upgrade(url)
            figures = asyncio.run(run(args, url))
        finally:
            if cleanup is not None:
                cleanup()
    write_result(
        "plates_hits",
        figures,
        {
            "backend": args.backend,
            "entries": args.entries,
            "reads": args.reads,
            "batch": args.batch,
            "hit_share": args.hit_share,
            "max_distance": args.max_distance,
            "cores": 1,
        },
    )


if __name__ == "__main__":
    main()
