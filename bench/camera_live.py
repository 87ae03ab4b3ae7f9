"""Live-view latency and CPU per stream, with 1, 4 and 8 RTSP cameras watched at once.

Starts ``rtcc serve`` in a subprocess (embedded mode). For each camera this
script runs a real RTSP source on loopback (:class:`rtcc.cameras.rtsp_relay.RtspTestStream`:
FFmpeg encodes H.264, ``-tune zerolatency``, a small server relays it over
RTSP/TCP) fed with frames that carry the wall-clock time they were made,
burned in as a 40-bit barcode (milliseconds) across the top of the picture.
Each camera is registered with the center and one viewer per camera reads
``GET /api/v1/cameras/{id}/live.mjpeg``; every JPEG part is decoded and its
barcode read back.

Figures per stream count:

* ``latency_ms`` p50/p95/p99 — frame made (source clock) → its JPEG part
  fully received by the viewer: FFmpeg encode + RTP relay + the center's
  RTSP demux, H.264 decode, JPEG encode, HTTP delivery;
* ``fps_received`` — JPEG parts per second per viewer;
* ``center_cpu_pct`` — the center process's CPU time over the window
  (100 % = one core), and ``cpu_pct_per_stream`` = that / streams.

The encoders and viewers run in this process (their CPU is not counted).
The machine is shared: run it alone for clean figures. Results go to
``bench/results/camera_live.jsonl``.

Usage::

    python bench/camera_live.py                    # 1, 4, 8 streams, 640x360 @ 10 fps, 20 s each
    python bench/camera_live.py --streams 1 4 --seconds 10 --size 320x240
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ADMIN_PASSWORD, CenterProcess, center_env, free_port, rtcc_exe, write_result

from rtcc.cameras.rtsp_relay import RtspTestStream

BITS = 40
BAND_H = 16


def stamp(img: np.ndarray[Any, Any], ms: int) -> None:
    """Burn ``ms`` (mod 2**40) into the top band: bit i is block i, white = 1."""
    w = img.shape[1]
    bw = w // BITS
    img[:BAND_H, :] = 0
    for i in range(BITS):
        if (ms >> (BITS - 1 - i)) & 1:
            img[:BAND_H, i * bw : (i + 1) * bw] = 255


def read_stamp(img: np.ndarray[Any, Any]) -> int:
    w = img.shape[1]
    bw = w // BITS
    gray = img[2 : BAND_H - 2].mean(axis=(0, 2)) if img.ndim == 3 else img[2 : BAND_H - 2].mean(axis=0)
    v = 0
    for i in range(BITS):
        v = (v << 1) | int(gray[i * bw + bw // 4 : (i + 1) * bw - bw // 4].mean() > 128)
    return v


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def feed(stream: RtspTestStream, fps: float, stop: asyncio.Event) -> None:
    w, h = stream.size
    base = np.zeros((h, w, 3), np.uint8)
    base[BAND_H:] = (70, 110, 90)
    n = 0
    t0 = time.monotonic()
    while not stop.is_set():
        n += 1
        img = base.copy()
        cv2.putText(img, str(n), (20, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
        stamp(img, int(time.time() * 1000) % (1 << BITS))
        stream.write_frame(img)
        await stream.drain()
        await asyncio.sleep(max(0.0, t0 + n / fps - time.monotonic()))


async def view(
    client: httpx.AsyncClient, cam: str, lat: list[float], counts: list[int], measuring: asyncio.Event
) -> None:
    async with client.stream("GET", f"/api/v1/cameras/{cam}/live.mjpeg", timeout=None) as r:
        if r.status_code != 200:
            raise RuntimeError(f"live view of {cam}: {r.status_code} {await r.aread()!r}")
        buf = b""
        async for chunk in r.aiter_raw():
            buf += chunk
            while True:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                hdrs = buf[:head_end].decode("latin-1").split("\r\n")
                size = int(next(h for h in hdrs if h.lower().startswith("content-length")).split(":")[1])
                if len(buf) < head_end + 4 + size + 2:
                    break
                jpeg = buf[head_end + 4 : head_end + 4 + size]
                buf = buf[head_end + 4 + size + 2 :]
                now_ms = time.time() * 1000
                img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                if img is None or not measuring.is_set():
                    continue
                made = read_stamp(img)
                delta = (int(now_ms) % (1 << BITS)) - made
                if 0 <= delta < 60_000:
                    lat.append(delta + (now_ms % 1))
                counts[0] += 1


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


async def run_level(
    center: CenterProcess, admin: httpx.AsyncClient, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    w, _, h = args.size.partition("x")
    streams = [
        RtspTestStream(size=(int(w), int(h)), fps=args.fps, source="pipe", path=f"bench{i}") for i in range(n)
    ]
    stop = asyncio.Event()
    measuring = asyncio.Event()
    feeders: list[asyncio.Task[None]] = []
    viewers: list[asyncio.Task[None]] = []
    cams: list[str] = []
    lat: list[float] = []
    counts = [0]
    try:
        for st in streams:
            await st.start()
            feeders.append(asyncio.create_task(feed(st, args.fps, stop)))
        for i, st in enumerate(streams):
            r = await admin.post(
                "/api/v1/cameras",
                json={
                    "kind": "city",
                    "name": f"bench {n}/{i}",
                    "lat": 33.52,
                    "lon": -86.81,
                    "stream_url": st.url,
                },
            )
            r.raise_for_status()
            cams.append(r.json()["id"])
        viewers = [asyncio.create_task(view(admin, c, lat, counts, measuring)) for c in cams]
        await asyncio.sleep(args.warmup)
        assert center.proc is not None
        cpu0, t0 = cpu_seconds(center.proc.pid), time.monotonic()
        measuring.set()
        await asyncio.sleep(args.seconds)
        measuring.clear()
        cpu1, t1 = cpu_seconds(center.proc.pid), time.monotonic()
        for v in viewers:
            if v.done() and v.exception():
                raise v.exception()  # type: ignore[misc]
        cpu_pct = 100.0 * (cpu1 - cpu0) / (t1 - t0)
        return {
            "streams": n,
            "frames": counts[0],
            "fps_received": round(counts[0] / (t1 - t0) / n, 2),
            "latency_ms": {
                "p50": pct(lat, 50),
                "p95": pct(lat, 95),
                "p99": pct(lat, 99),
                "max": pct(lat, 100),
            },
            "center_cpu_pct": round(cpu_pct, 1),
            "cpu_pct_per_stream": round(cpu_pct / n, 1),
        }
    finally:
        stop.set()
        for t in viewers + feeders:
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
        for c in cams:
            with contextlib.suppress(Exception):
                await admin.delete(f"/api/v1/cameras/{c}")
        for st in streams:
            await st.stop()


async def main(args: argparse.Namespace) -> None:
    if not RtspTestStream.available():
        sys.exit("ffmpeg is not installed")
    data = Path(tempfile.mkdtemp(prefix="rtcc-bench-live-"))
    port = free_port()
    env = center_env(data, port)
    env.update(RTCC_CAMERAS__LIVE_FPS=str(args.fps), RTCC_CAMERAS__JPEG_QUALITY=str(args.quality))
    center = CenterProcess(env, [rtcc_exe(), "serve"], port, data)
    center.start()
    levels = []
    try:
        async with httpx.AsyncClient(base_url=center.url, timeout=30) as anon:
            r = await anon.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            r.raise_for_status()
            token = r.json()["token"]
        async with httpx.AsyncClient(
            base_url=center.url, headers={"authorization": f"Bearer {token}"}, timeout=30
        ) as admin:
            for n in args.streams:
                level = await run_level(center, admin, n, args)
                print(level, flush=True)
                levels.append(level)
    finally:
        center.stop()
    write_result(
        "camera_live",
        {"levels": levels},
        {
            "size": args.size,
            "fps": args.fps,
            "jpeg_quality": args.quality,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "codec": "h264 (libx264 ultrafast zerolatency, GOP 1 s) over RTSP/TCP",
            "mode": "embedded",
        },
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8], help="Stream counts to measure.")
    p.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the sources.")
    p.add_argument("--fps", type=float, default=10.0, help="Source frames per second.")
    p.add_argument("--quality", type=int, default=75, help="JPEG quality of the live view.")
    p.add_argument("--seconds", type=float, default=20.0, help="Measured seconds per level.")
    p.add_argument("--warmup", type=float, default=6.0, help="Seconds before measuring (stream start-up).")
    asyncio.run(main(p.parse_args()))
