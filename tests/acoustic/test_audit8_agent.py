"""Audit 8: the sensor agent never loses a pulse silently, and a dead microphone is noticed.

* a wrong key over MQTT (whose PUBACK says nothing about the key) is found by the heartbeat's key
  check over HTTPS: exit 2, every pulse kept;
* pulses published over MQTT stay spooled until such a check confirms them;
* pulses the center refuses for good (a clock an hour ahead) are filed in ``refused/``, exit 2;
* a sound card that stops delivering: the heartbeat says ``recording: false``, then AudioError;
  :meth:`SensorAgent.stop` (SIGTERM) ends a stalled read; a full queue drops the oldest block;
* a ``--spool-dir`` that cannot be a folder: a message and exit 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import types
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rtcc.acoustic.agent import FileSource, SensorAgent, SoundDeviceSource, Uplink
from rtcc.acoustic.clock import SensorClock
from rtcc.acoustic.detect import AudioError
from rtcc.cli.sensor import register
from rtcc.devices.buffer import Spool
from rtcc.roles import Role
from tests.acoustic.test_agent import HERE, RATE, add_device, clip, dead_url, pulses
from tests.conftest import Running
from tests.helpers import eventually

PRODUCTION = pytest.mark.parametrize("backend", ["production"])


def _mqtt_port() -> str:
    port = os.environ.get("RTCC_TEST_MQTT_PORT")
    if not port:
        pytest.skip("RTCC_TEST_MQTT_PORT not set")
    return port


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep `sensor` a named sub-command
    return app


def _args(device: str, center_url: str, spool: Path, audio: Path, *extra: str) -> list[str]:
    args = ["sensor", "--device-id", device, "--lat", str(HERE.lat), "--lon", str(HERE.lon)]
    args += ["--center", center_url, "--spool-dir", str(spool), "--gpsd", "none"]
    return [*args, "--file", str(audio), "--as-fast-as-possible", "--drain-timeout-s", "20", *extra]


def _queued(folder: Path) -> int:
    spool = Spool(folder)
    try:
        return len(spool)
    finally:
        spool.close()


async def _run_cli(args: list[str], key: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, _app(), [*args, "--key", key])


async def _mqtt_uplink(device: str, key: str, url: str, port: str) -> Uplink:
    uplink = Uplink(device, key, url, mqtt=f"127.0.0.1:{port}")

    async def up() -> bool:
        return uplink.mqtt_connected

    await eventually(up, what="MQTT session up")
    return uplink


# --- 1. the key over MQTT ------------------------------------------------------------


@PRODUCTION
async def test_a_wrong_key_over_mqtt_keeps_every_pulse_and_exits_2(
    center: Running, clients: dict[Role, httpx.AsyncClient], tmp_path: Path
) -> None:
    port = _mqtt_port()
    key = await add_device(clients[Role.admin], "ac-mq81")
    audio = clip(tmp_path)
    args = _args("ac-mq81", center.url, tmp_path / "sp", audio, "--mqtt", f"127.0.0.1:{port}")
    r = await _run_cli(args, "WRONGKEY" + key[8:])
    assert r.exit_code == 2, r.output
    assert "refused the device key" in r.stderr and "3 pulse(s) kept in" in r.stderr
    assert _queued(tmp_path / "sp") == 3  # nothing lost
    # the right key delivers the kept pulses (and this run's, the same three detected again)
    r = await _run_cli(args, key)
    assert r.exit_code == 0, r.output
    assert _queued(tmp_path / "sp") == 0
    assert len(await pulses(clients[Role.admin], "ac-mq81")) >= 3


@PRODUCTION
async def test_pulses_sent_over_mqtt_stay_spooled_until_a_key_check_confirms_them(
    center: Running, clients: dict[Role, httpx.AsyncClient], tmp_path: Path
) -> None:
    port = _mqtt_port()
    admin = clients[Role.admin]
    key = await add_device(admin, "ac-mq82")
    metrics = center.center.metrics
    before = metrics.get("ingest_accepted", channel="mqtt")
    # 1. MQTT up, the center's HTTPS unreachable: the pulses go out over MQTT (and the bridge takes
    #    them), but no key check can confirm them, so the spool keeps them
    uplink = await _mqtt_uplink("ac-mq82", key, dead_url(), port)
    a = SensorAgent("ac-mq82", HERE, uplink, Spool(tmp_path / "sp"), SensorClock(0.0, None))

    stats = await asyncio.to_thread(a.run, FileSource(clip(tmp_path), fast=True), drain_timeout_s=3.0)
    uplink.close()
    a.spool.close()
    assert (stats.pulses, stats.delivered, stats.pending, stats.spooled_left) == (3, 0, 3, 3)

    async def three() -> list[dict[str, Any]] | None:
        items = await pulses(admin, "ac-mq82")
        return items if len(items) == 3 else None

    stored = {e["event_id"] for e in await eventually(three, what="3 pulses in over MQTT")}
    assert metrics.get("ingest_accepted", channel="mqtt") >= before + 3
    # 2. HTTPS reachable again: the backlog is sent again, a key check confirms it, the spool
    #    empties, and the center keeps each pulse once
    uplink = await _mqtt_uplink("ac-mq82", key, center.url, port)
    b = SensorAgent("ac-mq82", HERE, uplink, Spool(tmp_path / "sp"), SensorClock(0.0, None))
    stats = await asyncio.to_thread(
        b.run, FileSource(clip(tmp_path, "quiet.flac", []), fast=True), drain_timeout_s=30
    )
    uplink.close()
    b.spool.close()
    assert (stats.delivered, stats.pending, stats.spooled_left, stats.key_refused) == (3, 0, 0, None)
    assert {e["event_id"] for e in await pulses(admin, "ac-mq82")} == stored


# --- 2. refused pulses are kept --------------------------------------------------------


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_pulses_the_center_refuses_are_kept_in_refused_and_exit_2(
    center: Running, clients: dict[Role, httpx.AsyncClient], tmp_path: Path, backend: str
) -> None:
    key = await add_device(clients[Role.admin], "ac-0181")
    extra = ["--clock-offset-s", "3600"]  # an hour ahead: the center refuses every pulse
    if backend == "production":
        extra += ["--mqtt", f"127.0.0.1:{_mqtt_port()}"]  # ... and MQTT must not swallow them
    r = await _run_cli(_args("ac-0181", center.url, tmp_path / "sp", clip(tmp_path), *extra), key)
    assert r.exit_code == 2, r.output
    assert "3 refused" in r.stderr and "refused 3 pulse(s)" in r.stderr and "refused" in r.stderr
    files = sorted((tmp_path / "sp" / "refused").glob("*.json"))
    assert len(files) == 3 and _queued(tmp_path / "sp") == 0
    kept = [json.loads(f.read_text()) for f in files]
    assert all("in the future" in k["reason"] for k in kept)
    assert {k["body"]["type"] for k in kept} == {"pulse"} and all(k["body"]["audio_flac_b64"] for k in kept)
    assert await pulses(clients[Role.admin], "ac-0181") == []


# --- 3. a sound card that stops ----------------------------------------------------------


def _fake_sounddevice(stall_after_blocks: int, *, burst: int = 0) -> types.ModuleType:
    """A ``sounddevice`` stand-in: ``InputStream`` calls back with noise blocks, then falls silent.

    ``burst`` blocks are handed over at once when the stream starts (a reader that is behind).
    """

    class InputStream:
        def __init__(
            self, samplerate: int, channels: int, dtype: str, device: Any, blocksize: int, callback: Any
        ):
            self.bs, self.ch, self.cb, self.sr = blocksize, channels, callback, samplerate
            self._stop = threading.Event()

        def _run(self) -> None:
            rng = np.random.default_rng(0)
            for _ in range(stall_after_blocks):
                if self._stop.wait(self.bs / self.sr):
                    return
                self.cb(
                    (rng.standard_normal((self.bs, self.ch)) * 0.01).astype("float32"), self.bs, None, None
                )

        def __enter__(self) -> InputStream:
            for i in range(burst):
                self.cb(np.full((self.bs, self.ch), i, dtype="float32"), self.bs, None, None)
            threading.Thread(target=self._run, daemon=True).start()
            return self

        def __exit__(self, *exc: object) -> None:
            self._stop.set()

    mod = types.ModuleType("sounddevice")
    mod.InputStream = InputStream  # type: ignore[attr-defined]
    return mod


async def test_a_sound_card_that_stops_is_reported_and_ends_with_an_audio_error(
    center: Running, clients: dict[Role, httpx.AsyncClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = clients[Role.admin]
    key = await add_device(admin, "ac-0182")
    monkeypatch.setitem(__import__("sys").modules, "sounddevice", _fake_sounddevice(20))
    uplink = Uplink("ac-0182", key, center.url)
    a = SensorAgent("ac-0182", HERE, uplink, Spool(tmp_path / "sp"), SensorClock(0.0, None), heartbeat_s=600)
    src = SoundDeviceSource(rate_hz=RATE, stall_s=3.0)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            a.run(src, drain_timeout_s=10)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    await asyncio.to_thread(t.join, 60)  # a liveness bound, not a timing assertion
    uplink.close()
    a.spool.close()
    assert not t.is_alive(), "the agent hung on a silent sound card"
    assert len(outcome) == 1 and isinstance(outcome[0], AudioError)
    assert "no audio for 3 s" in outcome[0].message

    async def deaf() -> dict[str, Any] | None:
        dev = (await admin.get("/api/v1/devices/ac-0182")).json()
        return dev if dev["attributes"].get("recording") is False else None

    await eventually(deaf, what="the last heartbeat says the sensor is not recording")


def test_stop_ends_a_stalled_sound_card_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "sounddevice", _fake_sounddevice(5))
    a = SensorAgent(
        "ac-0183", HERE, Uplink("ac-0183", "k" * 32, None), Spool(tmp_path / "sp"), SensorClock(0.0, None)
    )
    src = SoundDeviceSource(rate_hz=RATE, stall_s=3600.0)
    done = threading.Event()
    t = threading.Thread(target=lambda: (a.run(src, drain_timeout_s=0), done.set()), daemon=True)
    t.start()
    while a.stats.samples < 5 * src.block:  # the five blocks arrive, then nothing
        time.sleep(0.05)
    while a.audio_flowing:  # the heartbeat now says the sensor is not recording
        time.sleep(0.05)
    assert a.heartbeat().recording is False
    a.stop()  # what SIGTERM does
    t.join(60)  # a liveness bound, not a timing assertion
    assert done.is_set(), "stop() did not end a stalled read"
    a.spool.close()


def test_a_full_queue_drops_the_oldest_blocks_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "sounddevice", _fake_sounddevice(0, burst=10))
    src = SoundDeviceSource(rate_hz=RATE, stall_s=0.5, queue_blocks=4)
    got: list[float] = []
    with pytest.raises(AudioError, match="no audio"):
        for block in src:
            got.append(float(block[0]))
    assert got == [6.0, 7.0, 8.0, 9.0]  # the newest four
    assert src.dropped == 6


# --- 4. a spool folder that cannot be one ----------------------------------------------------


@pytest.mark.parametrize("where", ["file", "proc"])
def test_a_bad_spool_dir_is_a_message_and_exit_2(tmp_path: Path, where: str) -> None:
    spool = tmp_path / "a-file"
    spool.write_text("x")
    if where == "proc":
        spool = Path("/proc/rtcc-spool")
    r = CliRunner().invoke(_app(), [*_args("ac-0184", dead_url(), spool, clip(tmp_path)), "--key", "k" * 32])
    assert r.exit_code == 2, r.output
    assert "--spool-dir" in r.stderr and str(spool) in r.stderr and "Traceback" not in r.output
