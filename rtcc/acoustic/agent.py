"""The sensor agent (``rtcc sensor``): audio in, timed pulses out to the center, nothing lost.

::

    audio source ──▶ OnsetDetector ──▶ Pulse (sensor clock) ──▶ Spool (SQLite) ──▶ Uplink ──▶ center
    (file, stdin PCM, sound card)                                 on disk first     MQTT QoS 1, else HTTPS

* **Sources** yield float blocks: an audio file (paced in real time or as fast as possible), raw
  PCM on stdin (``s16le``, ``s32le``, ``f32le``, ``u8``; any channel count; live, or a recording
  read as fast as possible), or a sound card when the optional ``sounddevice`` module is installed.
* **Audio.** Each pulse carries the audio the center's classifier reads: from
  :data:`~rtcc.acoustic.features.PRE_S` (50 ms) before the onset to the end of its
  :data:`~rtcc.acoustic.features.WINDOW_S` (0.5 s) window (:data:`PULSE_AUDIO`). A shorter snippet
  starves the model: on the calibration split, the old 25 ms + 75 ms snippet let the center call
  41.7 % of the rounds gunfire against 91.7 % with the full window
  (``bench/acoustic_pulse_audio.py``). The price is that a pulse leaves the sensor up to 0.45 s after
  its onset instead of 0.25 s (the detector waits for the audio after it).
* **Time.** Sample *n* is stamped ``anchor + n / rate``, the anchor taken from the
  :class:`~rtcc.acoustic.clock.SensorClock` (GPS via gpsd when reachable, else a configured offset)
  when the first block arrives, minus that block's length (a recording: no lag, or a given start
  time, ``start_utc``). For a live source the anchor is then disciplined against the clock every
  5 s (sound-card drift), and at once on a clock step that persists (GPS lock gained, a new GPS
  offset; see :meth:`SensorAgent._discipline`). A pulse is stamped with the anchor in force at its
  onset, so a re-anchor between an onset and its detection does not move it. The clock quality of
  the anchor in force travels in the heartbeat.
* **Delivery.** Every pulse is written to the spool before it is sent, and leaves it only when
  the center is known to have it, or moved to ``refused/`` when the center refused it for good.
  A pulse the spool cannot store (its size bound reached, a full or failing disk) is sent directly
  over HTTPS at once, and counted as lost (logged) when the center does not take it then
  (:attr:`AgentStats.unspooled`, :attr:`AgentStats.lost`); the agent keeps running, and a disk
  that clears is used again. Then:

  - over HTTPS (``POST /api/v1/ingest/events``) the answer says so per event: ``202`` / ``409``
    (all duplicates) is delivered; an event listed as rejected, or a ``422`` for a single event
    (too old, in the future, invalid), is refused for good and moved to ``spool/refused/<id>.json``
    with the center's reason — never deleted;
  - over MQTT (QoS 1, topic ``rtcc/sensors/<id>/pulse``, payload a
    :class:`~rtcc.events.DeviceEnvelope`) a PUBACK only says the NATS server stored the message:
    the bridge checks the key later and cannot answer. So a pulse published over MQTT stays in the
    spool (*pending*) until a **key check over HTTPS** that started after the publish succeeds.
    The heartbeat is that check: it goes over HTTPS when the center's URL is reachable (its answer
    proves the key valid and the sensor clock within the center's window), and one is sent about a
    second after pulses were published. MQTT is used only for fresh pulses (younger than
    ``MQTT_FRESH_S``: a backlog goes over HTTPS, where a refusal is visible) and not while the last
    heartbeat was refused (a clock the center refuses: pulses go over HTTPS, pending ones are sent
    again there). Without a reachable HTTPS URL, MQTT pulses stay pending (delivered, but kept and
    sent again on the next start; the center drops the duplicates).
  - ``401`` / ``403`` (a wrong or revoked key, over HTTPS, the heartbeat included): the sender
    stops, every pulse stays spooled (:attr:`Uplink.key_refused`; ``rtcc sensor`` exits 2).

  Anything else (unreachable, 5xx) keeps them spooled and retries with back-off, oldest first.
  Health is logged edge-triggered: once when the center becomes unreachable, once when it is back.
* **Heartbeats** (:class:`~rtcc.events.DeviceHeartbeat`: GPS lock, noise floor, clock quality,
  position, and ``recording`` = audio is flowing) every ``heartbeat_s`` (at least 1 s; a batch of
  pulses goes out between two heartbeats, whatever the interval); they are not spooled (a
  stale heartbeat says nothing). A sound card that stops delivering audio makes the heartbeat say
  ``recording: false`` and, after ``stall_s``, the source raises :class:`AudioError`: the agent
  sends a last heartbeat, delivers what it has and stops with that error (``rtcc sensor`` exits 2,
  so a service manager restarts it).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import queue
import sqlite3
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

from rtcc.acoustic import features
from rtcc.acoustic.clock import ClockQuality, SensorClock
from rtcc.acoustic.detect import AudioError, FloatArray, Onset, OnsetDetector, loudest_channel, to_mono_float
from rtcc.devices import http as device_http
from rtcc.devices.buffer import Spool, SpoolFull
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
    channel: int | None = None
    """The channel taken from multichannel audio: the loudest of the first block with sound, then
    kept (switching channels between blocks would put a step in the audio)."""

    def __iter__(self) -> Iterator[FloatArray]:
        raise NotImplementedError

    def mono(self, block: Any) -> FloatArray:
        """``block`` as one channel (:func:`rtcc.acoustic.detect.to_mono_float`), the same for the stream."""
        a = np.asarray(block)
        if self.channel is None and a.ndim == 2 and a.shape[1] > 1:
            if not np.any(a):
                return to_mono_float(a, 0)  # silence: any channel, the choice waits for sound
            self.channel = loudest_channel(a)
        return to_mono_float(a, self.channel)

    def stop(self) -> None:
        """Ask a blocked iteration to end (a source that never blocks for long ignores it)."""


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
                    yield self.mono(blk)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AudioError(f"{self.path}: audio stream broke after {n} samples ({exc})") from exc


class PcmSource(AudioSource):
    """Raw interleaved PCM from a binary stream (stdin).

    ``live`` (default): audio captured now (``arecord``), disciplined against the clock as it
    arrives. ``live=False``: a recording (``ffmpeg … -f s16le -``), read as fast as it comes and
    stamped by sample count from its start, like a file read ``fast``.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        rate_hz: int,
        fmt: str = "s16le",
        channels: int = 1,
        block_s: float = 0.1,
        live: bool = True,
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
        self.live = live

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
                yield self.mono(a)


class SoundDeviceSource(AudioSource):
    """A sound card through the optional ``sounddevice`` module.

    The card's callback hands blocks over through a queue of ``queue_blocks`` blocks; when the
    reader falls that far behind, the oldest block is dropped and counted (:attr:`dropped`)
    instead of failing inside the audio thread. Iteration ends after :meth:`stop`.

    Raises
    ------
    AudioError
        ``sounddevice`` is not installed or the device cannot be opened (at construction), or no
        audio arrived for ``stall_s`` seconds (while iterating: unplugged, muted or stopped).
    """

    def __init__(
        self,
        *,
        rate_hz: int,
        device: str | None = None,
        channels: int = 1,
        block_s: float = 0.1,
        stall_s: float = 10.0,
        queue_blocks: int = 600,
    ):
        try:
            import sounddevice  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise AudioError("reading a sound card needs the optional 'sounddevice' module") from exc
        self._sd: Any = sounddevice
        self.rate_hz = rate_hz
        self.device = device
        self.channels = channels
        self.block = max(1, round(block_s * rate_hz))
        self.stall_s = stall_s
        self.queue_blocks = max(1, queue_blocks)
        self.dropped = 0
        """Blocks dropped because the reader fell ``queue_blocks`` behind."""
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[FloatArray]:
        q: queue.Queue[FloatArray] = queue.Queue(maxsize=self.queue_blocks)

        def _cb(indata: Any, frames: int, t: Any, status: Any) -> None:
            if status:
                log.warning("sound card: %s", status)
            block = self.mono(np.array(indata, copy=True))
            while True:
                try:
                    q.put_nowait(block)
                    return
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        q.get_nowait()
                        self.dropped += 1

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
        told = 0
        with stream:
            last = time.monotonic()
            while not self._stop.is_set():
                try:
                    block = q.get(timeout=0.2)
                except queue.Empty:
                    if time.monotonic() - last > self.stall_s:
                        raise AudioError(
                            f"sound device {self.device or 'default'!r} delivered no audio for "
                            f"{self.stall_s:g} s (unplugged, muted or stopped?)"
                        ) from None
                    continue
                last = time.monotonic()
                if self.dropped != told:
                    log.warning(
                        "sound card: %d block(s) dropped so far (the reader fell behind)", self.dropped
                    )
                    told = self.dropped
                yield block


# --- uplink --------------------------------------------------------------------


MQTT_FRESH_S = 3600.0
"""Only pulses younger than this go over MQTT; a backlog goes over HTTPS, where refusals are visible."""


@dataclass
class Sent:
    """What became of a batch handed to :meth:`Uplink.send`."""

    delivered: list[str] = field(default_factory=list)
    """The center has them (HTTPS 202 or 409): forget them."""
    refused: dict[str, str] = field(default_factory=dict)
    """Refused for good (id → the center's reason): keep them aside, never send them again."""
    pending: list[str] = field(default_factory=list)
    """Published over MQTT: kept until a later key check over HTTPS succeeds."""


def _reason(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {r.status_code}: {r.text[:200]}"


class Uplink:
    """Delivers batches of events to the center: MQTT QoS 1 when configured and connected, else HTTPS.

    See the module docstring for what each answer means. :meth:`check_in` sends a heartbeat and,
    over HTTPS, checks the key and the clock; :meth:`send` delivers a batch.
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
        self.key_refused: str | None = None
        """Why the center refused the device key (401/403); nothing is sent after that."""
        self.trusted: bool | None = None
        """Whether the last heartbeat over HTTPS was accepted (key and clock); None before the first."""
        self.checked_at: float | None = None
        """``time.monotonic()`` when the last accepted key check over HTTPS was sent."""
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
        """Whether the MQTT session is up (fresh pulses then go over MQTT)."""
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

    def _refuse_key(self, r: httpx.Response) -> None:
        if self.key_refused is None:
            self.key_refused = _reason(r)
            log.error("the center refused the device key: %s; pulses are kept in the spool", self.key_refused)

    def _publish(self, kind: str, events: list[dict[str, Any]]) -> bool:
        payload = json.dumps({"device_id": self.device_id, "key": self.key, "events": events})
        info = self._mqtt.publish(f"rtcc/sensors/{self.device_id}/{kind}", payload, qos=1)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=5.0)
        return bool(info.is_published())

    def _post(self, events: list[dict[str, Any]]) -> httpx.Response:
        assert self._http is not None and self.center_url is not None
        return device_http.post(
            self._http,
            self.center_url + "api/v1/ingest/events",
            json={"events": events},
            headers={"authorization": f"Device {self.key}", "x-device-id": self.device_id},
        )

    def check_in(self, heartbeat: dict[str, Any]) -> bool:
        """Send a heartbeat; True when the center (or the MQTT server) took it.

        Over HTTPS when a center URL is configured and reachable: the answer is a key check
        (``401``/``403`` sets :attr:`key_refused`) and a clock check (a refused heartbeat sets
        :attr:`trusted` False; an accepted one sets it True and :attr:`checked_at`). Otherwise over
        MQTT, which checks nothing.
        """
        if self.key_refused is not None:
            return False
        t0 = time.monotonic()
        if self._http is not None:
            try:
                r = self._post([heartbeat])
            except httpx.HTTPError as exc:
                self._health(False, f"{type(exc).__name__}: {exc}")
            else:
                if r.status_code in (401, 403):
                    self._refuse_key(r)
                    return False
                if r.status_code in (202, 409, 422):
                    try:
                        rejected = r.json().get("rejected", []) if r.status_code == 202 else []
                    except ValueError:  # not the center (a proxy's or portal's page)
                        self._health(False, f"{r.status_code} answer is not the center's: {r.text[:100]}")
                    else:
                        self._health(True)
                        if r.status_code == 422 or rejected:
                            why = rejected[0]["reason"] if rejected else _reason(r)
                            if self.trusted is not False:
                                log.error(
                                    "the center refused this sensor's heartbeat (%s): pulses go over "
                                    "HTTPS, where each refusal is answered",
                                    why,
                                )
                            self.trusted = False
                            return False
                        if self.trusted is False:
                            log.info("the center accepts this sensor's heartbeat again")
                        self.trusted, self.checked_at = True, t0
                        return True
                else:
                    self._health(False, f"HTTP {r.status_code}: {r.text[:200]}")
        return self.mqtt_connected and self._publish("heartbeat", [heartbeat])

    def send(self, kind: str, events: list[dict[str, Any]], *, fresh: bool = True) -> Sent | None:
        """Deliver ``events``; what became of them, or None when nothing could be delivered now.

        ``fresh``: the events are recent enough for MQTT (see :data:`MQTT_FRESH_S`).
        """
        if self.key_refused is not None:
            return None
        ids = [str(e["event_id"]) for e in events]
        if fresh and self.trusted is not False and self.mqtt_connected and self._publish(kind, events):
            return Sent(pending=ids)
        if self._http is None:
            self._health(False, "no HTTPS fallback configured")
            return None
        try:
            r = self._post(events)
        except httpx.HTTPError as exc:
            self._health(False, f"{type(exc).__name__}: {exc}")
            return None
        if r.status_code in (401, 403):
            self._refuse_key(r)
            return None
        if r.status_code in (202, 409):
            try:
                rejected = r.json().get("rejected", []) if r.status_code == 202 else []
            except ValueError:
                self._health(False, f"{r.status_code} answer is not the center's: {r.text[:100]}")
                return None
            self._health(True)
            refused = {ids[rej["index"]]: str(rej["reason"]) for rej in rejected}
            return Sent(delivered=[i for i in ids if i not in refused], refused=refused)
        if r.status_code == 422:
            self._health(True)
            if len(events) == 1:
                return Sent(refused={ids[0]: _reason(r)})
            try:  # every event refused: the answer lists each one with its reason
                listed = r.json()["error"]["details"]["rejected"]
                refused = {ids[int(rej["index"])]: str(rej["reason"]) for rej in listed}
            except (ValueError, KeyError, TypeError, IndexError):
                refused = {}
            if len(refused) == len(ids):
                return Sent(refused=refused)
        if r.status_code in (413, 422) and len(events) > 1:  # split: find the bad one(s)
            half = len(events) // 2
            a = self.send(kind, events[:half], fresh=False)
            b = self.send(kind, events[half:], fresh=False) if a is not None else None
            if a is None:
                return None
            if b is not None:
                a.delivered += b.delivered
                a.refused.update(b.refused)
            return a
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
    """Pulses the center refused for good (moved to the spool's ``refused/`` folder)."""
    pending: int = 0
    """Of ``spooled_left``: published over MQTT but not confirmed by a key check over HTTPS."""
    unforgotten: int = 0
    """Of ``spooled_left``: delivered, but the spool could not remove them (a failing disk); they are
    sent again on the next start and the center drops the duplicates."""
    key_refused: str | None = None
    """Why the center refused the device key (nothing more was sent), else None."""
    unspooled: int = 0
    """Pulses the spool could not store (bound reached, full or failing disk): sent directly instead."""
    lost: int = 0
    """Of ``unspooled``: neither stored nor delivered (the center unreachable or refusing them)."""
    errors: list[str] = field(default_factory=list)


PULSE_AUDIO: dict[str, float] = {
    "audio_pre_ms": 1000.0 * features.PRE_S,
    "audio_post_ms": 1000.0 * (features.WINDOW_S - features.PRE_S),
}
"""The audio a pulse carries around its onset: the classifier's window (see the module docstring)."""


def _within_bytes(rows: list[tuple[int, str, str]], limit: int) -> list[tuple[int, str, str]]:
    """The leading ``rows`` whose bodies add up to at most ``limit`` bytes (always the first)."""
    total = 0
    for i, (_, _, body) in enumerate(rows):
        total += len(body)
        if total > limit and i > 0:
            return rows[:i]
    return rows


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
        Seconds between heartbeats; at least :attr:`MIN_HEARTBEAT_S` (a smaller value is raised to
        it: a heartbeat per loop would flood the center).
    detector_options : dict
        Keyword options of :class:`~rtcc.acoustic.detect.OnsetDetector`, over :data:`PULSE_AUDIO`.
    batch : int
        Most events per delivery.
    batch_bytes : int
        Most bytes of events per delivery (a pulse's audio is ~10-60 kB; the center takes requests
        up to ``server.max_request_bytes``, 1 MiB by default). A bigger request is split on a 413.
    """

    DISCIPLINE_WINDOW_S = 5.0
    STEP_S = 0.05
    """A residual beyond this is a clock step candidate (see :meth:`_discipline`)."""
    STEP_READINGS = 3
    """Consecutive step readings that confirm a step (a single late block is no step)."""
    STEP_SPAN_S = 0.2
    """Least audio the confirming readings cover, s (a backlog drains faster than that)."""
    STEP_SPREAD_S = 0.025
    """Most the confirming readings may disagree, s (a step is one constant offset)."""
    MIN_HEARTBEAT_S = 1.0
    """The shortest heartbeat interval, s."""
    DIRECT_MAX = 100
    """Most pulses the spool could not store waiting in memory to be sent directly."""
    CONFIRM_AFTER_S = 1.0
    """A key check (heartbeat over HTTPS) follows pulses published over MQTT after this long."""
    AUDIO_STALE_S = 2.0
    """A live source that delivered nothing for this long is reported as not recording."""

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
        batch_bytes: int = 512 * 1024,
    ) -> None:
        self.device_id = device_id
        self.position = position
        self.uplink = uplink
        self.spool = spool
        self.clock = clock
        if not heartbeat_s >= self.MIN_HEARTBEAT_S:
            log.warning("heartbeat every %s s is too often: every %g s", heartbeat_s, self.MIN_HEARTBEAT_S)
            heartbeat_s = self.MIN_HEARTBEAT_S
        self.heartbeat_s = heartbeat_s
        self.detector_options = {**PULSE_AUDIO, **(detector_options or {})}
        self.batch = batch
        self.batch_bytes = batch_bytes
        self.stats = AgentStats()
        self.detector: OnsetDetector | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        """Set when a pulse the spool could not store waits (ends a back-off early)."""
        self._hb_sent = threading.Event()
        self._force_hb = threading.Event()
        self._last_hb = -1e18
        self._confirm_gap = self.CONFIRM_AFTER_S
        self._cursor = 0
        """Spool position of the last pulse published over MQTT and not yet confirmed."""
        self._pending: list[tuple[float, list[str]]] = []
        """(``time.monotonic()`` after the PUBACK, ids) of pulses awaiting a key check."""
        self._direct: list[dict[str, Any]] = []
        """Pulses the spool could not store, waiting to be sent directly (guarded by ``_direct_lock``)."""
        self._direct_lock = threading.Lock()
        self._unforgotten: set[str] = set()
        """Delivered ids the spool could not remove yet (removal retried before sending more)."""
        self._source: AudioSource | None = None
        self._last_block_t: float | None = None
        self._audio_error: str | None = None
        self.anchor_utc: float | None = None
        """UTC of the stream's first sample, s since the epoch, as the latest anchor says (set when
        the first block arrives)."""
        self._anchors: list[tuple[float, float]] = []
        """(stream s from which it holds, anchor UTC) in stream order: a pulse takes the anchor in
        force at its onset."""
        self._anchor_quality: ClockQuality | None = None
        """The clock quality the anchor in force was taken with (what the heartbeat reports)."""
        self._resid: list[float] = []
        self._window_start = 0.0
        self._suspects: list[tuple[float, float]] = []
        """(stream s, residual) of the consecutive readings beyond :attr:`STEP_S`."""
        self._suspect_from = 0.0
        """Stream s of the last reading before the suspected step."""
        self._held: list[Onset] = []
        """Onsets detected while a step is suspected: stamped once it is confirmed or rejected."""
        self._told_ahead = False

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

    @property
    def audio_flowing(self) -> bool:
        """False once the source failed, or when a live source delivered nothing for a while."""
        if self._audio_error is not None:
            return False
        src, last = self._source, self._last_block_t
        if src is None or not src.live or last is None:
            return True
        return time.monotonic() - last < self.AUDIO_STALE_S

    @property
    def clock_quality(self) -> ClockQuality:
        """What the pulse stamps are disciplined by: the clock's quality when the anchor in force
        was taken (a step the clock made that the anchor does not follow yet does not count)."""
        q = self._anchor_quality
        return self.clock.quality if q is None else q

    def heartbeat(self) -> DeviceHeartbeat:
        floor = self.detector.noise_floor_db if self.detector is not None else None
        return DeviceHeartbeat(
            source=self.device_id,
            device=self.device_id,
            # stamped by the sensor clock, as its pulses are: the center's answer checks that clock
            occurred_at=datetime.fromtimestamp(self.clock.now(), UTC),
            device_type=DeviceType.acoustic_sensor,
            pos=self.position,
            gps_lock=self.clock.gps_lock,
            clock_quality=self.clock_quality,
            noise_floor_db=None if floor is None else float(np.clip(floor, -200, 200)),
            recording=self.audio_flowing,
        )

    def _queue(self, event: Event) -> None:
        """Spool ``event``; when the spool cannot store it, hand it to the sender to deliver at once."""
        body = event.model_dump_json()
        try:
            self.spool.put(str(event.event_id), body)
        except (SpoolFull, sqlite3.Error, OSError) as exc:
            with self._direct_lock:
                self.stats.unspooled += 1
                if len(self._direct) >= self.DIRECT_MAX:
                    self.stats.lost += 1
                    log.error(
                        "pulse %s cannot be stored (%s) and %d others wait to be sent directly: lost",
                        event.event_id,
                        exc,
                        len(self._direct),
                    )
                else:
                    self._direct.append(json.loads(body))
                    log.error("pulse %s cannot be stored (%s): sending it directly", event.event_id, exc)
            self._urgent.set()
        self._wake.set()

    # -- delivery thread ---------------------------------------------------------

    def _fresh(self, event: dict[str, Any]) -> bool:
        try:
            t = datetime.fromisoformat(str(event["occurred_at"])).timestamp()
        except (KeyError, ValueError):
            return False
        return self.clock.now() - t < MQTT_FRESH_S

    def _forget(self, ids: list[str]) -> None:
        """Remove delivered ``ids`` from the spool; on a failing disk, remember them to retry."""
        try:
            self.spool.remove(ids)
        except (sqlite3.Error, OSError) as exc:
            if not self._unforgotten:
                log.error(
                    "spool %s: delivered pulses cannot be removed (%s); retrying before sending more",
                    self.spool.path,
                    exc,
                )
            self._unforgotten.update(ids)

    def _check_in(self) -> None:
        """Send a heartbeat (a key check over HTTPS) and settle the pulses it confirms."""
        self._last_hb = time.monotonic()
        forced = self._force_hb.is_set()
        self._force_hb.clear()
        if self.uplink.check_in(self.heartbeat().model_dump(mode="json")):
            self.stats.heartbeats += 1
        if forced:
            self._hb_sent.set()
        checked = self.uplink.checked_at
        if checked is not None and self._pending and self.uplink.trusted:
            confirmed = [ids for t, ids in self._pending if t <= checked]
            self._pending = [(t, ids) for t, ids in self._pending if t > checked]
            for ids in confirmed:
                self._forget(ids)
                self.stats.delivered += len(ids)
            if not self._pending:
                self._cursor = 0
        if self.uplink.trusted is False and self._pending:
            # the center refuses this sensor's heartbeat (its clock?): the bridge may have refused
            # what went over MQTT too, so send it again over HTTPS, where each answer is known
            self._pending.clear()
            self._cursor = 0
        if checked is not None and checked >= self._last_hb:
            self._confirm_gap = self.CONFIRM_AFTER_S
        else:
            self._confirm_gap = min(self._confirm_gap * 2, max(self.heartbeat_s, self.CONFIRM_AFTER_S))

    def _heartbeat_due(self) -> bool:
        since = time.monotonic() - self._last_hb
        if since >= self.heartbeat_s or self._force_hb.is_set():
            return True
        checked = self.uplink.checked_at
        unconfirmed = bool(self._pending) and (checked is None or self._pending[-1][0] > checked)
        return unconfirmed and since >= self._confirm_gap

    def _refuse(self, event_id: str, why: str) -> bool:
        try:
            where = self.spool.refuse(event_id, why)
        except (OSError, sqlite3.Error) as exc:
            log.error("center refused pulse %s for good (%s), and it cannot be filed: %s", event_id, why, exc)
            return False
        self.stats.refused += 1
        log.error("center refused pulse %s for good: %s; kept in %s", event_id, why, where)
        return True

    def _lose(self, events: list[dict[str, Any]], why: str) -> None:
        with self._direct_lock:
            self.stats.lost += len(events)
        for e in events:
            log.error("pulse %s could not be stored nor delivered (%s): lost", e.get("event_id"), why)

    def _send_direct(self) -> bool:
        """Send the pulses the spool could not store, once, over HTTPS (where the answer is known).

        Returns False when the center could not take them (they are counted as lost).
        """
        with self._direct_lock:
            events, self._direct = self._direct[: self.batch], self._direct[self.batch :]
        sent = self.uplink.send("pulse", events, fresh=False)
        if sent is None:
            self._lose(events, self.uplink.key_refused or "the center is unreachable")
            return False
        self.stats.delivered += len(sent.delivered)
        for e in events:
            if (why := sent.refused.get(str(e["event_id"]))) is not None:
                self._lose([e], f"the center refused it: {why}")
        return True

    def _deliver_step(self) -> str:
        """One round of the sender: ``"sent"``, ``"idle"`` (nothing to send) or ``"retry"`` (back off)."""
        if self._heartbeat_due():
            self._check_in()  # then a batch: heartbeats must never starve the pulses
            if self.uplink.key_refused is not None:
                return "sent"  # the loop ends
        if self._direct:
            return "sent" if self._send_direct() else "retry"
        if self._unforgotten:
            ids = sorted(self._unforgotten)
            self.spool.remove(ids)  # raises again while the disk still fails
            self._unforgotten.clear()
            log.info("spool %s: delivered pulses removed", self.spool.path)
        rows = self.spool.peek_after(self._cursor, self.batch)
        if not rows:
            return "idle"
        rows = _within_bytes(rows, self.batch_bytes)
        events = [json.loads(body) for _, _, body in rows]
        sent = self.uplink.send("pulse", events, fresh=all(self._fresh(e) for e in events))
        if sent is None:
            return "retry"
        self.stats.delivered += len(sent.delivered)
        self._forget(sent.delivered)
        if not all([self._refuse(eid, why) for eid, why in sent.refused.items()]):
            return "retry"
        if sent.pending:
            self._pending.append((time.monotonic(), sent.pending))
            self._cursor = rows[-1][0]
        return "retry" if self._unforgotten else "sent"

    def _deliver_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set() and self.uplink.key_refused is None:
            try:
                outcome = self._deliver_step()
            except (sqlite3.Error, OSError) as exc:  # a failing disk: the agent goes on
                log.error("spool %s: %s; delivery retried", self.spool.path, exc)
                outcome = "retry"
            if outcome == "idle":
                self._wake.wait(0.2)
                self._wake.clear()
            elif outcome == "retry":
                if self._urgent.wait(backoff):  # a pulse the spool could not store: try it now
                    self._urgent.clear()
                backoff = min(backoff * 2, 30.0)
            else:
                backoff = 0.5

    def _spooled(self) -> int:
        """Pulses in the spool (0 when it cannot be read)."""
        try:
            return len(self.spool)
        except sqlite3.Error as exc:
            log.error("spool %s cannot be read: %s", self.spool.path, exc)
            return 0

    # -- main loop --------------------------------------------------------------

    def run(
        self, source: AudioSource, *, drain_timeout_s: float = 30.0, start_utc: float | None = None
    ) -> AgentStats:
        """Read ``source`` to its end (or until :meth:`stop`), then wait up to ``drain_timeout_s``
        for the spool to empty.

        A live source stops early when the center refuses the device key (a file is read to its
        end: every pulse stays spooled). ``start_utc`` (s since the epoch) stamps the first sample
        of a recording (a source that is not live); by default, the clock when its first block
        arrives.

        Raises
        ------
        AudioError
            The source's audio cannot be used (raised after a last heartbeat saying so and after
            delivering the pulses found before).
        ValueError
            ``start_utc`` was given for a live source.
        """
        if start_utc is not None and source.live:
            raise ValueError("start_utc stamps a recording; a live source is stamped by the clock")
        self.clock.start()
        self.detector = OnsetDetector(source.rate_hz, **self.detector_options)  # type: ignore[arg-type]
        self._source = source
        self._last_block_t = time.monotonic()
        sender = threading.Thread(target=self._deliver_loop, name="uplink", daemon=True)
        sender.start()
        n_end = 0
        failure: AudioError | None = None
        try:
            try:
                for block in source:
                    self._last_block_t = time.monotonic()
                    n_end += block.size
                    if not self._anchors:
                        if start_utc is not None:
                            self._set_anchor(0.0, start_utc, "configured")
                        else:
                            lag = block.size / source.rate_hz if source.live else 0.0
                            self._set_anchor(0.0, self.clock.now() - lag, self.clock.quality)
                    elif source.live:
                        self._discipline(n_end / source.rate_hz, block.size / source.rate_hz)
                    for onset in self.detector.process(block):
                        self._held.append(onset)
                    if not self._suspects:
                        self._release()
                    self.stats.samples += block.size
                    if self._stop.is_set() or (source.live and self.uplink.key_refused is not None):
                        break
            except AudioError as exc:
                failure = exc
                self._audio_error = exc.message
                self._hb_sent.clear()
                self._force_hb.set()  # tell the center at once that the audio is gone
                self._wake.set()
            if self._anchors:
                self._held += self.detector.flush()
                self._release()
            deadline = time.monotonic() + drain_timeout_s
            while (
                (self._spooled() or self._direct or (failure is not None and not self._hb_sent.is_set()))
                and time.monotonic() < deadline
                and sender.is_alive()
            ):
                time.sleep(0.05)
        finally:
            self._stop.set()
            self._wake.set()
            self._urgent.set()
            sender.join(timeout=15)
            self.clock.stop()
            with self._direct_lock:
                left, self._direct = self._direct, []
            if left:
                self._lose(left, self.uplink.key_refused or "the agent stopped before the center took it")
            self.stats.spooled_left = self._spooled()
            self.stats.pending = sum(len(ids) for _, ids in self._pending)
            self.stats.unforgotten = len(self._unforgotten)
            self.stats.key_refused = self.uplink.key_refused
        if failure is not None:
            raise failure
        return self.stats

    # -- time -------------------------------------------------------------------

    def _set_anchor(self, from_s: float, anchor: float, quality: ClockQuality) -> None:
        """Let ``anchor`` hold for onsets from stream second ``from_s`` on."""
        while self._anchors and self._anchors[-1][0] >= from_s:
            self._anchors.pop()
        self._anchors.append((from_s, anchor))
        self.anchor_utc = anchor
        self._anchor_quality = quality

    def _anchor_at(self, time_s: float) -> float:
        """The anchor in force at stream second ``time_s``."""
        for from_s, anchor in reversed(self._anchors):
            if from_s <= time_s:
                return anchor
        return self._anchors[0][1]

    def _release(self) -> None:
        """Stamp and spool the onsets held back, each with the anchor in force at its onset."""
        held, self._held = self._held, []
        for onset in held:
            self._queue(self.pulse(onset, self._anchor_at(onset.time_s)))
            self.stats.pulses += 1
        # the detector emits an onset at most a window after it: older anchors are no longer needed
        keep_from = (self._anchors[-1][0] if self._anchors else 0.0) - 4 * self.DISCIPLINE_WINDOW_S
        while len(self._anchors) > 1 and self._anchors[1][0] <= keep_from:
            self._anchors.pop(0)

    def _discipline(self, stream_s: float, block_s: float) -> None:
        """Keep the sample clock on UTC for a live source (sound-card drift, clock steps).

        Each block's arrival time minus its stamped end time (the *residual*) is the input latency
        plus the accumulated drift (and any step of the clock).

        * **Drift.** The smallest residual of each ``DISCIPLINE_WINDOW_S`` window (scheduling only
          ever adds delay) is stepped into the anchor, so the least-delayed block of each window
          lines up with UTC. A 100 ppm sound card then stays within about 0.5 ms of UTC; a constant
          capture latency beyond one block is invisible here and belongs in the configured clock
          offset.
        * **Steps** (GPS lock gained or lost, a new GPS offset). A window's minimum would hide a
          step behind the blocks before it for up to two windows, so a residual beyond
          :attr:`STEP_S` (50 ms: above a TPV fix's serial-latency jitter of a few tens of ms and a
          busy scheduler's delays, below what moves a located shot by more than ~17 m) starts a
          *suspected step*. It is applied at once when the last :attr:`STEP_READINGS` (3)
          consecutive residuals, covering at least :attr:`STEP_SPAN_S` of audio, all lie beyond
          it and agree within :attr:`STEP_SPREAD_S` — one constant offset, not one late block
          (rejected: the next residual is back) nor a backlog draining (each residual a block
          smaller). The new anchor holds from the end of the last block read before the step
          (an onset in the block it happened in cannot be placed better than that block).
          Onsets detected while a step is suspected are held back and then stamped with the anchor
          in force at their onset; the heartbeat's clock quality stays the old anchor's until the
          step is applied. Suspected steps that never agree fall back to the window (which then
          waits no longer than one more window for them).

        A pulse is stamped with the anchor in force at its onset, never with one taken after it.
        """
        anchor = self._anchors[-1][1]
        r = self.clock.now() - (anchor + stream_s)
        self._resid.append(r)
        if abs(r) > self.STEP_S:
            if not self._suspects:
                self._suspect_from = stream_s - block_s
            self._suspects.append((stream_s, r))
            last: list[tuple[float, float]] = []
            span = self.STEP_SPAN_S - 1e-6  # block ends are sums of floats
            for reading in reversed(self._suspects):
                last.append(reading)
                if len(last) >= self.STEP_READINGS and last[0][0] - reading[0] >= span:
                    break
            rs = [x for _, x in last]
            if (
                len(last) >= self.STEP_READINGS
                and last[0][0] - last[-1][0] >= span
                and max(rs) - min(rs) <= self.STEP_SPREAD_S
            ):
                step = min(rs)
                log.warning("sensor clock stepped by %.3f s against the audio clock: re-anchored", step)
                self._set_anchor(self._suspect_from, anchor + step, self.clock.quality)
                self._suspects.clear()
                self._resid.clear()
                self._window_start = stream_s
                return
            if r < 0 and not self._told_ahead and stream_s - self._suspects[0][0] >= self.DISCIPLINE_WINDOW_S:
                self._told_ahead = True
                log.warning(
                    "the live audio runs ahead of the clock (a recording? then read it as one: "
                    "--as-fast-as-possible, --start-utc)"
                )
        else:
            self._suspects.clear()
        if stream_s - self._window_start < self.DISCIPLINE_WINDOW_S:
            return
        if self._suspects and stream_s - self._suspects[0][0] < self.DISCIPLINE_WINDOW_S:
            return  # a step may still be confirmed: the window waits for it
        self._window_start = stream_s
        step = min(self._resid)
        self._resid.clear()
        self._suspects.clear()
        if abs(step) > self.STEP_S:
            log.warning("sensor clock stepped by %.3f s against the audio clock: re-anchored", step)
        self._set_anchor(stream_s, anchor + step, self.clock.quality)

    def stop(self) -> None:
        """Ask :meth:`run` to finish soon (after the current block, or a blocked source's next poll)."""
        self._stop.set()
        self._wake.set()
        self._urgent.set()
        if self._source is not None:
            self._source.stop()


def stdin_binary() -> BinaryIO:
    """Standard input as a binary stream."""
    return sys.stdin.buffer
