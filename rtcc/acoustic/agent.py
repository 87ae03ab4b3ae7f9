"""The sensor agent (``rtcc sensor``): audio in, timed pulses out to the center, nothing lost.

::

    audio source ──▶ OnsetDetector ──▶ Pulse (sensor clock) ──▶ Spool (SQLite) ──▶ Uplink ──▶ center
    (file, stdin PCM, sound card)                                 on disk first     MQTT QoS 1, else HTTPS

* **Sources** yield float blocks: an audio file (paced in real time or as fast as possible), raw
  PCM on stdin (``s16le``, ``s32le``, ``f32le``, ``u8``; any channel count), or a sound card when
  the optional ``sounddevice`` module is installed.
* **Audio.** Each pulse carries the audio the center's classifier reads: from
  :data:`~rtcc.acoustic.features.PRE_S` (50 ms) before the onset to the end of its
  :data:`~rtcc.acoustic.features.WINDOW_S` (0.5 s) window (:data:`PULSE_AUDIO`). A shorter snippet
  starves the model: on the calibration split, the old 25 ms + 75 ms snippet let the center call
  41.7 % of the rounds gunfire against 91.7 % with the full window
  (``bench/acoustic_pulse_audio.py``). The price is that a pulse leaves the sensor up to 0.45 s after
  its onset instead of 0.25 s (the detector waits for the audio after it).
* **Time.** Sample *n* is stamped ``anchor + n / rate``, the anchor taken from the
  :class:`~rtcc.acoustic.clock.SensorClock` (GPS via gpsd when reachable, else a configured offset)
  when the first block arrives, minus that block's length. For a live source the anchor is then
  disciplined against the clock every 5 s (sound-card drift, clock steps; see
  :meth:`SensorAgent._discipline`). The clock quality travels in the heartbeat.
* **Delivery.** Every pulse is written to the spool before it is sent, and leaves it only when
  the center is known to have it, or moved to ``refused/`` when the center refused it for good:

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
  position, and ``recording`` = audio is flowing) every ``heartbeat_s``; they are not spooled (a
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
from rtcc.acoustic.clock import SensorClock
from rtcc.acoustic.detect import AudioError, FloatArray, Onset, OnsetDetector, to_mono_float
from rtcc.devices import http as device_http
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
            block = to_mono_float(np.array(indata, copy=True))
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
    key_refused: str | None = None
    """Why the center refused the device key (nothing more was sent), else None."""
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
        Seconds between heartbeats.
    detector_options : dict
        Keyword options of :class:`~rtcc.acoustic.detect.OnsetDetector`, over :data:`PULSE_AUDIO`.
    batch : int
        Most events per delivery.
    batch_bytes : int
        Most bytes of events per delivery (a pulse's audio is ~10-60 kB; the center takes requests
        up to ``server.max_request_bytes``, 1 MiB by default). A bigger request is split on a 413.
    """

    DISCIPLINE_WINDOW_S = 5.0
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
        self.heartbeat_s = heartbeat_s
        self.detector_options = {**PULSE_AUDIO, **(detector_options or {})}
        self.batch = batch
        self.batch_bytes = batch_bytes
        self.stats = AgentStats()
        self.detector: OnsetDetector | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._hb_sent = threading.Event()
        self._force_hb = threading.Event()
        self._last_hb = -1e18
        self._confirm_gap = self.CONFIRM_AFTER_S
        self._cursor = 0
        """Spool position of the last pulse published over MQTT and not yet confirmed."""
        self._pending: list[tuple[float, list[str]]] = []
        """(``time.monotonic()`` after the PUBACK, ids) of pulses awaiting a key check."""
        self._source: AudioSource | None = None
        self._last_block_t: float | None = None
        self._audio_error: str | None = None
        self.anchor_utc: float | None = None
        """UTC of the stream's first sample, s since the epoch (set when the first block arrives)."""
        self._resid: list[float] = []
        self._window_start = 0.0

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
            clock_quality=self.clock.quality,
            noise_floor_db=None if floor is None else float(np.clip(floor, -200, 200)),
            recording=self.audio_flowing,
        )

    def _queue(self, event: Event) -> None:
        self.spool.put(str(event.event_id), event.model_dump_json())
        self._wake.set()

    # -- delivery thread ---------------------------------------------------------

    def _fresh(self, event: dict[str, Any]) -> bool:
        try:
            t = datetime.fromisoformat(str(event["occurred_at"])).timestamp()
        except (KeyError, ValueError):
            return False
        return self.clock.now() - t < MQTT_FRESH_S

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
                self.spool.remove(ids)
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
        except OSError as exc:
            log.error("center refused pulse %s for good (%s), and it cannot be filed: %s", event_id, why, exc)
            return False
        self.stats.refused += 1
        log.error("center refused pulse %s for good: %s; kept in %s", event_id, why, where)
        return True

    def _deliver_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set() and self.uplink.key_refused is None:
            if self._heartbeat_due():
                self._check_in()
                continue
            rows = self.spool.peek_after(self._cursor, self.batch)
            if not rows:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            rows = _within_bytes(rows, self.batch_bytes)
            events = [json.loads(body) for _, _, body in rows]
            sent = self.uplink.send("pulse", events, fresh=all(self._fresh(e) for e in events))
            if sent is None:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self.spool.remove(sent.delivered)
            self.stats.delivered += len(sent.delivered)
            if not all([self._refuse(eid, why) for eid, why in sent.refused.items()]):
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            if sent.pending:
                self._pending.append((time.monotonic(), sent.pending))
                self._cursor = rows[-1][0]

    # -- main loop --------------------------------------------------------------

    def run(self, source: AudioSource, *, drain_timeout_s: float = 30.0) -> AgentStats:
        """Read ``source`` to its end (or until :meth:`stop`), then wait up to ``drain_timeout_s``
        for the spool to empty.

        A live source stops early when the center refuses the device key (a file is read to its
        end: every pulse stays spooled).

        Raises
        ------
        AudioError
            The source's audio cannot be used (raised after a last heartbeat saying so and after
            delivering the pulses found before).
        """
        self.clock.start()
        self.detector = OnsetDetector(source.rate_hz, **self.detector_options)  # type: ignore[arg-type]
        self._source = source
        self._last_block_t = time.monotonic()
        sender = threading.Thread(target=self._deliver_loop, name="uplink", daemon=True)
        sender.start()
        anchor: float | None = None
        n_end = 0
        failure: AudioError | None = None
        try:
            try:
                for block in source:
                    self._last_block_t = time.monotonic()
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
                    if self._stop.is_set() or (source.live and self.uplink.key_refused is not None):
                        break
            except AudioError as exc:
                failure = exc
                self._audio_error = exc.message
                self._hb_sent.clear()
                self._force_hb.set()  # tell the center at once that the audio is gone
                self._wake.set()
            if anchor is not None:
                for onset in self.detector.flush():
                    self._queue(self.pulse(onset, anchor))
                    self.stats.pulses += 1
            deadline = time.monotonic() + drain_timeout_s
            while (
                (len(self.spool) or (failure is not None and not self._hb_sent.is_set()))
                and time.monotonic() < deadline
                and sender.is_alive()
            ):
                time.sleep(0.05)
        finally:
            self._stop.set()
            self._wake.set()
            sender.join(timeout=15)
            self.clock.stop()
            self.stats.spooled_left = len(self.spool)
            self.stats.pending = sum(len(ids) for _, ids in self._pending)
            self.stats.key_refused = self.uplink.key_refused
        if failure is not None:
            raise failure
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
        """Ask :meth:`run` to finish soon (after the current block, or a blocked source's next poll)."""
        self._stop.set()
        self._wake.set()
        if self._source is not None:
            self._source.stop()


def stdin_binary() -> BinaryIO:
    """Standard input as a binary stream."""
    return sys.stdin.buffer
