"""The sensor agent (``rtcc sensor``): audio in, timed pulses out to the center, nothing lost.

::

    audio source ──▶ OnsetDetector ──▶ Pulse (sensor clock) ──▶ Spool (SQLite) ──▶ Uplink ──▶ center
    (file, stdin PCM, sound card)                                 on disk first     MQTT QoS 1, else HTTPS

* **Sources** yield float blocks: an audio file (paced in real time or as fast as possible), raw
  PCM on stdin (``s16le``, ``s32le``, ``f32le``, ``u8``; any channel count), or a sound card when
  the optional ``sounddevice`` module is installed.
* **Time.** Sample *n* is stamped ``anchor + n / rate``, the anchor taken from the
  :class:`~rtcc.acoustic.clock.SensorClock` (GPS via gpsd when reachable, else a configured offset)
  when the first block arrives, minus that block's length. For a live source the anchor is then
  disciplined against the clock every 5 s (sound-card drift, clock steps; see
  :meth:`SensorAgent._discipline`). The clock quality travels in the heartbeat.
* **Delivery.** Every pulse is written to the spool before it is sent, and removed only after the
  center took it: an MQTT PUBACK (QoS 1, topic ``rtcc/sensors/<id>/pulse``, payload a
  :class:`~rtcc.events.DeviceEnvelope`), or an HTTPS ``202`` / ``409`` (all duplicates counts as
  delivered) from ``POST /api/v1/ingest/events``. Events the center refuses as invalid (422) can
  never succeed and are dropped with a log line; anything else (unreachable, 5xx, 401) keeps them
  spooled and retries with back-off, oldest first. Health is logged edge-triggered: once when the
  center becomes unreachable, once when it is back.
* **Heartbeats** (:class:`~rtcc.events.DeviceHeartbeat`: GPS lock, noise floor, clock quality,
  position) every ``heartbeat_s``; they are not spooled (a stale heartbeat says nothing).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import numpy as np
import soundfile as sf

from rtcc.acoustic.clock import SensorClock
from rtcc.acoustic.detect import AudioError, FloatArray, Onset, OnsetDetector, to_mono_float
from rtcc.devices.buffer import Spool
from rtcc.events import DeviceHeartbeat, Event, Position, Pulse
from rtcc.roles import DeviceType

log = logging.getLogger(__name__)

PCM_FORMATS: dict[str, str] = {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4", "u8": "u1"}
"""Raw PCM formats accepted on stdin, as numpy dtypes."""


# --- sources -------------------------------------------------------------------


class AudioSource:
    """Blocks of mono float audio at a fixed rate (``rate_hz``); iterate to read."""

    rate_hz: int
    live: bool = True

    def __iter__(self) -> Iterator[FloatArray]:
        raise NotImplementedError


class FileSource(AudioSource):
    """An audio file read in ``block_s`` blocks, paced in real time unless ``fast``.

    Raises
    ------
    AudioError
        The file cannot be opened as audio.
    """

    def __init__(self, path: Path, *, block_s: float = 0.1, fast: bool = False) -> None:
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            raise AudioError(f"{path}: cannot open audio ({exc})") from exc
        self.path = path
        self.rate_hz = int(info.samplerate)
        self.block = max(1, round(block_s * self.rate_hz))
        self.fast = fast
        self.live = not fast

    def __iter__(self) -> Iterator[FloatArray]:
        t0 = time.monotonic()
        n = 0
        try:
            with sf.SoundFile(str(self.path)) as f:
                for blk in f.blocks(blocksize=self.block, dtype="float64", always_2d=True):
                    if not self.fast:
                        ahead = (n + len(blk)) / self.rate_hz - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                    n += len(blk)
                    yield to_mono_float(blk)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AudioError(f"{self.path}: audio stream broke after {n} samples ({exc})") from exc


class PcmSource(AudioSource):
    """Raw interleaved PCM from a binary stream (stdin)."""

    def __init__(
        self, stream: BinaryIO, *, rate_hz: int, fmt: str = "s16le", channels: int = 1, block_s: float = 0.1
    ) -> None:
        if fmt not in PCM_FORMATS:
            raise AudioError(f"PCM format {fmt!r} is not supported; choose one of {', '.join(PCM_FORMATS)}")
        if channels < 1:
            raise AudioError("channels must be ≥ 1")
        self.stream = stream
        self.rate_hz = rate_hz
        self.dtype = np.dtype(PCM_FORMATS[fmt])
        self.channels = channels
        self.frame_bytes = self.dtype.itemsize * channels
        self.block = max(1, round(block_s * rate_hz))

    def __iter__(self) -> Iterator[FloatArray]:
        rest = b""
        while True:
            chunk = self.stream.read(self.block * self.frame_bytes - len(rest))
            if not chunk:
                if rest:
                    log.warning("stdin ended inside a sample frame: %d trailing byte(s) ignored", len(rest))
                return
            data = rest + chunk
            whole = len(data) - len(data) % self.frame_bytes
            rest = data[whole:]
            if whole:
                a = np.frombuffer(data[:whole], dtype=self.dtype).reshape(-1, self.channels)
                yield to_mono_float(a)


class SoundDeviceSource(AudioSource):
    """A sound card through the optional ``sounddevice`` module.

    Raises
    ------
    AudioError
        ``sounddevice`` is not installed or the device cannot be opened.
    """

    def __init__(self, *, rate_hz: int, device: str | None = None, channels: int = 1, block_s: float = 0.1):
        try:
            import sounddevice  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise AudioError("reading a sound card needs the optional 'sounddevice' module") from exc
        self._sd: Any = sounddevice
        self.rate_hz = rate_hz
        self.device = device
        self.channels = channels
        self.block = max(1, round(block_s * rate_hz))

    def __iter__(self) -> Iterator[FloatArray]:
        import queue

        q: queue.Queue[FloatArray] = queue.Queue(maxsize=600)

        def _cb(indata: Any, frames: int, t: Any, status: Any) -> None:
            if status:
                log.warning("sound card: %s", status)
            q.put_nowait(to_mono_float(np.array(indata, copy=True)))

        try:
            stream = self._sd.InputStream(
                samplerate=self.rate_hz,
                channels=self.channels,
                dtype="float32",
                device=self.device,
                blocksize=self.block,
                callback=_cb,
            )
        except Exception as exc:
            raise AudioError(f"cannot open sound device {self.device!r}: {exc}") from exc
        with stream:
            while True:
                yield q.get()


# --- uplink --------------------------------------------------------------------


class Uplink:
    """Delivers batches of events to the center: MQTT QoS 1 when configured and connected, else HTTPS.

    ``send`` returns the ids that are done with (delivered, duplicates or refused for good);
    the rest stay in the spool.
    """

    def __init__(
        self,
        device_id: str,
        key: str,
        center_url: str | None,
        *,
        mqtt: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.device_id = device_id
        self.key = key
        self.center_url = center_url.rstrip("/") + "/" if center_url else None
        self._http = httpx.Client(timeout=timeout_s) if center_url else None
        self._mqtt: Any = None
        self._mqtt_addr = mqtt
        self.online: bool | None = None
        self.refused = 0
        if mqtt:
            self._start_mqtt(mqtt)

    def _start_mqtt(self, addr: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        host, _, port = addr.rpartition(":")
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"rtcc-sensor-{self.device_id}",
            clean_session=False,
        )
        client.reconnect_delay_set(1, 30)
        try:
            client.connect_async(host or "127.0.0.1", int(port or 1883), keepalive=30)
            client.loop_start()
        except (OSError, ValueError) as exc:
            log.warning("mqtt %s: %s; using HTTPS", addr, exc)
            return
        self._mqtt = client

    @property
    def mqtt_connected(self) -> bool:
        """Whether the MQTT session is up (deliveries then go over MQTT)."""
        return self._mqtt is not None and bool(self._mqtt.is_connected())

    def close(self) -> None:
        if self._mqtt is not None:
            self._mqtt.loop_stop()
            self._mqtt.disconnect()
        if self._http is not None:
            self._http.close()

    def _health(self, ok: bool, why: str = "") -> None:
        if ok and self.online is not True:
            log.info("center reachable%s", " again" if self.online is False else "")
        elif not ok and self.online is not False:
            log.warning("center unreachable (%s); pulses are kept in the spool", why)
        self.online = ok

    def send(self, kind: str, events: list[dict[str, Any]]) -> list[str] | None:
        """Deliver ``events``; the ids done with, or None when nothing could be delivered now."""
        ids = [str(e["event_id"]) for e in events]
        if self.mqtt_connected:
            payload = json.dumps({"device_id": self.device_id, "key": self.key, "events": events})
            info = self._mqtt.publish(f"rtcc/sensors/{self.device_id}/{kind}", payload, qos=1)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=5.0)
            if info.is_published():
                self._health(True)
                return ids
        if self._http is None or self.center_url is None:
            self._health(False, "no HTTPS fallback configured")
            return None
        try:
            r = self._http.post(
                self.center_url + "api/v1/ingest/events",
                json={"events": events},
                headers={"authorization": f"Device {self.key}", "x-device-id": self.device_id},
            )
        except httpx.HTTPError as exc:
            self._health(False, f"{type(exc).__name__}: {exc}")
            return None
        if r.status_code in (202, 409):
            self._health(True)
            if r.status_code == 202:
                for rej in r.json().get("rejected", []):
                    self.refused += 1
                    log.error("center refused event %s: %s", ids[rej["index"]], rej["reason"])
            return ids
        if r.status_code == 422 and len(events) == 1:
            self._health(True)
            self.refused += 1
            log.error("center refused event %s for good: %s", ids[0], r.text[:300])
            return ids
        if r.status_code in (413, 422) and len(events) > 1:  # split: find the bad one(s)
            half = len(events) // 2
            a = self.send(kind, events[:half])
            b = self.send(kind, events[half:]) if a is not None else None
            return (a or []) + (b or []) if a is not None else None
        self._health(False, f"HTTP {r.status_code}: {r.text[:200]}")
        return None


# --- agent ---------------------------------------------------------------------


@dataclass
class AgentStats:
    """What the agent did (returned by :meth:`SensorAgent.run`)."""

    samples: int = 0
    pulses: int = 0
    delivered: int = 0
    heartbeats: int = 0
    spooled_left: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


def flac_b64(audio: FloatArray, rate_hz: int) -> str:
    """Audio as a 16-bit FLAC file, base64 (ASCII)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), rate_hz, format="FLAC", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class SensorAgent:
    """Runs a source through the detector and delivers pulses (see the module docstring).

    Parameters
    ----------
    device_id : str
        The sensor's registered device id.
    position : Position
        Where the microphone is (WGS84).
    uplink : Uplink
        Delivery to the center.
    spool : Spool
        The on-disk outbox.
    clock : SensorClock
        Time source.
    heartbeat_s : float
        Seconds between heartbeats.
    detector_options : dict
        Keyword options of :class:`~rtcc.acoustic.detect.OnsetDetector`.
    batch : int
        Most events per delivery.
    """

    DISCIPLINE_WINDOW_S = 5.0

    def __init__(
        self,
        device_id: str,
        position: Position,
        uplink: Uplink,
        spool: Spool,
        clock: SensorClock,
        *,
        heartbeat_s: float = 30.0,
        detector_options: dict[str, float] | None = None,
        batch: int = 50,
    ) -> None:
        self.device_id = device_id
        self.position = position
        self.uplink = uplink
        self.spool = spool
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.detector_options = detector_options or {}
        self.batch = batch
        self.stats = AgentStats()
        self.detector: OnsetDetector | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_hb = -1e18
        self.anchor_utc: float | None = None
        self._resid: list[float] = []
        self._window_start = 0.0
        """UTC of the stream's first sample, s since the epoch (set when the first block arrives)."""

    # -- events ---------------------------------------------------------------

    def pulse(self, onset: Onset, anchor_utc: float) -> Pulse:
        """The Pulse event for ``onset`` (``anchor_utc``: UTC of sample 0, s since the epoch)."""
        t = anchor_utc + onset.time_s
        return Pulse(
            source=self.device_id,
            device=self.device_id,
            occurred_at=datetime.fromtimestamp(t, UTC),
            pos=self.position,
            peak_db=float(np.clip(onset.peak_db, -200, 250)),
            snr_db=float(np.clip(onset.snr_db, -100, 250)),
            duration_ms=float(np.clip(onset.duration_ms, 0, 60_000)),
            sample_rate_hz=onset.sample_rate_hz,
            audio_flac_b64=flac_b64(onset.audio, onset.sample_rate_hz),
        )

    def heartbeat(self) -> DeviceHeartbeat:
        floor = self.detector.noise_floor_db if self.detector is not None else None
        return DeviceHeartbeat(
            source=self.device_id,
            device=self.device_id,
            device_type=DeviceType.acoustic_sensor,
            pos=self.position,
            gps_lock=self.clock.gps_lock,
            clock_quality=self.clock.quality,
            noise_floor_db=None if floor is None else float(np.clip(floor, -200, 200)),
            recording=True,
        )

    def _queue(self, event: Event) -> None:
        self.spool.put(str(event.event_id), event.model_dump_json())
        self._wake.set()

    # -- delivery thread ---------------------------------------------------------

    def _deliver_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            if time.monotonic() - self._last_hb >= self.heartbeat_s:
                self._last_hb = time.monotonic()
                hb = self.heartbeat().model_dump(mode="json")
                if self.uplink.send("heartbeat", [hb]) is not None:
                    self.stats.heartbeats += 1
            rows = self.spool.peek(self.batch)
            if not rows:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            done = self.uplink.send("pulse", [json.loads(body) for _, body in rows])
            if done is None:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            self.spool.remove(done)
            self.stats.delivered += len(done)
        self.stats.refused = self.uplink.refused

    # -- main loop --------------------------------------------------------------

    def run(self, source: AudioSource, *, drain_timeout_s: float = 30.0) -> AgentStats:
        """Read ``source`` to its end (or until :meth:`stop`), then wait up to ``drain_timeout_s``
        for the spool to empty.

        Raises
        ------
        AudioError
            The source's audio cannot be used.
        """
        self.clock.start()
        self.detector = OnsetDetector(source.rate_hz, **self.detector_options)  # type: ignore[arg-type]
        sender = threading.Thread(target=self._deliver_loop, name="uplink", daemon=True)
        sender.start()
        anchor: float | None = None
        n_end = 0
        try:
            for block in source:
                n_end += block.size
                if anchor is None:
                    lag = block.size / source.rate_hz if source.live else 0.0
                    anchor = self.clock.now() - lag
                elif source.live:
                    anchor = self._discipline(anchor, n_end / source.rate_hz)
                self.anchor_utc = anchor
                for onset in self.detector.process(block):
                    self._queue(self.pulse(onset, anchor))
                    self.stats.pulses += 1
                self.stats.samples += block.size
                if self._stop.is_set():
                    break
            if anchor is not None:
                for onset in self.detector.flush():
                    self._queue(self.pulse(onset, anchor))
                    self.stats.pulses += 1
            deadline = time.monotonic() + drain_timeout_s
            while len(self.spool) and time.monotonic() < deadline and sender.is_alive():
                time.sleep(0.05)
        finally:
            self._stop.set()
            self._wake.set()
            sender.join(timeout=15)
            self.clock.stop()
            self.stats.spooled_left = len(self.spool)
            self.stats.refused = self.uplink.refused
        return self.stats

    def _discipline(self, anchor: float, stream_s: float) -> float:
        """Keep the sample clock on UTC for a live source (sound-card drift, clock steps).

        Each block's arrival time minus its stamped end time is the input latency plus the
        accumulated drift (and any step of the clock). The smallest residual of each
        ``DISCIPLINE_WINDOW_S`` window (scheduling only ever adds delay) is stepped into the
        anchor, so the least-delayed block of each window lines up with UTC. A 100 ppm sound
        card then stays within about 0.5 ms of UTC; a constant capture latency beyond one block
        is invisible here and belongs in the configured clock offset.
        """
        r = self.clock.now() - (anchor + stream_s)
        self._resid.append(r)
        if stream_s - self._window_start < self.DISCIPLINE_WINDOW_S:
            return anchor
        self._window_start = stream_s
        step = min(self._resid)
        self._resid.clear()
        if abs(step) > 0.05:
            log.warning("sensor clock stepped by %.3f s against the audio clock: re-anchored", step)
        return anchor + step

    def stop(self) -> None:
        """Ask :meth:`run` to finish after the current block."""
        self._stop.set()
        self._wake.set()


def stdin_binary() -> BinaryIO:
    """Standard input as a binary stream."""
    return sys.stdin.buffer
