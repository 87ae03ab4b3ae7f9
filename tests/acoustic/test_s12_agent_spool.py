"""Session 12: a spool that cannot store a pulse (full disk, size bound) neither crashes the agent
nor loses the pulse silently, and ``--heartbeat-s 0`` cannot starve pulse delivery.

Audit findings: ``(ulimit -f 48; rtcc sensor … --spool-dir spF --file clip.flac --as-fast-as-possible)``
ended in a ``sqlite3.OperationalError: disk I/O error`` traceback (exit 1) with one pulse of six
kept; a failing ``Spool.remove`` killed the delivery thread; ``--heartbeat-s 0`` sent heartbeats
only, never a pulse.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from rtcc.acoustic.agent import FileSource, SensorAgent, Sent, Uplink
from rtcc.acoustic.clock import SensorClock
from rtcc.cli.sensor import register
from rtcc.devices.buffer import Spool, SpoolFull
from rtcc.roles import Role
from tests.acoustic.test_agent import HERE, RATE, add_device, clip, dead_url, pulses
from tests.acoustic.test_detect import friedlander, in_noise
from tests.conftest import Running
from tests.helpers import eventually

SIX_S = [0.6, 1.6, 2.6, 3.6, 4.6, 5.6]


def six_shots(tmp_path: Path) -> Path:
    """Six shots in 6.5 s of noise (synthetic)."""
    x = in_noise(RATE, friedlander(RATE, SIX_S, 6.5), 25.0, np.random.default_rng(7))
    path = tmp_path / "six.flac"
    sf.write(path, x, RATE, subtype="PCM_16")
    return path


class FakeUplink(Uplink):
    """The center as the agent sees it, without a network: takes every batch, or is unreachable."""

    def __init__(self, *, reachable: bool = True) -> None:
        super().__init__("ac-s12", "k" * 32, None)
        self.reachable = reachable
        self.got: list[str] = []
        self.fresh: list[bool] = []
        self.check_ins = 0

    def check_in(self, heartbeat: dict[str, Any]) -> bool:
        self.check_ins += 1
        return True

    def send(self, kind: str, events: list[dict[str, Any]], *, fresh: bool = True) -> Sent | None:
        if not self.reachable:
            return None
        ids = [str(e["event_id"]) for e in events]
        self.got += ids
        self.fresh.append(fresh)
        return Sent(delivered=ids)


class FailingSpool(Spool):
    """A spool on a disk that fails: ``put`` for the items numbered in ``bad_puts`` (from 0), and
    the first ``bad_removes`` calls of ``remove``."""

    def __init__(self, folder: Path, *, bad_puts: frozenset[int] = frozenset(), bad_removes: int = 0) -> None:
        super().__init__(folder)
        self.bad_puts, self.bad_removes, self.puts = bad_puts, bad_removes, 0

    def put(self, event_id: str, body: str) -> None:
        n, self.puts = self.puts, self.puts + 1
        if n in self.bad_puts:
            raise sqlite3.OperationalError("disk I/O error")
        super().put(event_id, body)

    def remove(self, event_ids: list[str]) -> None:
        if self.bad_removes:
            self.bad_removes -= 1
            raise sqlite3.OperationalError("disk I/O error")
        super().remove(event_ids)


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep `sensor` a named sub-command
    return app


# --- the agent -------------------------------------------------------------------------------


def test_a_pulse_the_spool_cannot_store_is_sent_directly(tmp_path: Path) -> None:
    uplink = FakeUplink()
    spool = FailingSpool(tmp_path / "sp", bad_puts=frozenset({0, 1}))
    a = SensorAgent("ac-s12", HERE, uplink, spool, SensorClock(0.0, None))
    stats = a.run(FileSource(clip(tmp_path), fast=True), drain_timeout_s=30)  # a liveness bound
    spool.close()
    assert (stats.pulses, stats.unspooled, stats.lost, stats.delivered, stats.spooled_left) == (3, 2, 0, 3, 0)
    assert len(set(uplink.got)) == 3
    assert False in uplink.fresh  # the direct sends go over HTTPS, where the answer is known


def test_a_pulse_neither_stored_nor_delivered_is_counted_and_logged_and_the_agent_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = FailingSpool(
        tmp_path / "sp", bad_puts=frozenset({1})
    )  # the disk is full for a moment, then clears
    a = SensorAgent("ac-s12", HERE, FakeUplink(reachable=False), spool, SensorClock(0.0, None))
    with caplog.at_level(logging.ERROR, logger="rtcc.acoustic.agent"):
        stats = a.run(FileSource(clip(tmp_path), fast=True), drain_timeout_s=0)
    assert len(spool) == 2  # the pulses before and after the failure are kept
    spool.close()
    assert (stats.pulses, stats.unspooled, stats.lost, stats.spooled_left) == (3, 1, 1, 2)
    lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost) == 1 and "disk I/O error" not in lost[0] and "unreachable" in lost[0]
    assert any("cannot be stored (disk I/O error)" in r.getMessage() for r in caplog.records)


def test_a_spool_that_cannot_forget_a_delivered_pulse_does_not_stop_the_sender(tmp_path: Path) -> None:
    spool = FailingSpool(tmp_path / "sp", bad_removes=2)
    uplink = FakeUplink()
    a = SensorAgent("ac-s12", HERE, uplink, spool, SensorClock(0.0, None))
    stats = a.run(FileSource(clip(tmp_path), fast=True), drain_timeout_s=60)  # a liveness bound
    spool.close()
    assert (stats.pulses, stats.delivered, stats.spooled_left) == (3, 3, 0)
    assert len(set(uplink.got)) == 3 and stats.lost == 0


def test_a_spool_bound_refuses_items_past_it_and_takes_them_again_once_freed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "sp", max_bytes=200_000)
    body = "x" * 30_000
    stored = 0
    with pytest.raises(SpoolFull, match="full"):
        for i in range(100):
            spool.put(f"id-{i}", body)
            stored += 1
    assert 3 <= stored < 7 and len(spool) == stored and spool.used_bytes() <= 200_000
    spool.remove([f"id-{i}" for i in range(stored)])
    spool.put("id-again", body)  # freed pages are used again
    assert len(spool) == 1
    spool.close()


def test_a_full_spool_sends_pulses_directly(tmp_path: Path) -> None:
    uplink = FakeUplink()
    spool = Spool(tmp_path / "sp", max_bytes=1)
    a = SensorAgent("ac-s12", HERE, uplink, spool, SensorClock(0.0, None))
    stats = a.run(FileSource(clip(tmp_path), fast=True), drain_timeout_s=30)  # a liveness bound
    spool.close()
    assert (stats.pulses, stats.unspooled, stats.lost, stats.delivered) == (3, 3, 0, 3)


@pytest.mark.parametrize("heartbeat_s", [0.0, -5.0])
def test_heartbeats_never_starve_pulse_delivery(tmp_path: Path, heartbeat_s: float) -> None:
    uplink = FakeUplink()
    a = SensorAgent(
        "ac-s12", HERE, uplink, Spool(tmp_path / "sp"), SensorClock(0.0, None), heartbeat_s=heartbeat_s
    )
    stats = a.run(FileSource(clip(tmp_path), fast=True), drain_timeout_s=30)  # a liveness bound
    a.spool.close()
    assert (stats.pulses, stats.delivered, stats.spooled_left) == (3, 3, 0)
    assert uplink.check_ins >= 1
    assert a.heartbeat_s == SensorAgent.MIN_HEARTBEAT_S


def test_a_heartbeat_and_a_batch_take_turns(tmp_path: Path) -> None:
    """Even when a heartbeat is due on every round, each round still delivers a batch."""
    uplink = FakeUplink()
    a = SensorAgent("ac-s12", HERE, uplink, Spool(tmp_path / "sp"), SensorClock(0.0, None), batch=1)
    a.spool.put("e1", '{"event_id": "e1", "occurred_at": "2020-01-01T00:00:00+00:00"}')
    a.spool.put("e2", '{"event_id": "e2", "occurred_at": "2020-01-01T00:00:00+00:00"}')
    a._force_hb.set()
    assert a._deliver_step() == "sent" and uplink.check_ins == 1 and uplink.got == ["e1"]
    a._force_hb.set()
    assert a._deliver_step() == "sent" and uplink.check_ins == 2 and uplink.got == ["e1", "e2"]
    a.spool.close()


# --- the command line ------------------------------------------------------------------------


def _args(spool: Path, audio: Path, center_url: str, *extra: str) -> list[str]:
    args = ["sensor", "--device-id", "ac-s12", "--key", "k" * 32, "--lat", str(HERE.lat)]
    args += ["--lon", str(HERE.lon), "--center", center_url, "--spool-dir", str(spool), "--gpsd", "none"]
    return [*args, "--file", str(audio), "--as-fast-as-possible", *extra]


@pytest.mark.parametrize("value", ["0", "-1", "0.5"])
def test_heartbeat_below_one_second_is_refused_up_front(tmp_path: Path, value: str) -> None:
    r = CliRunner().invoke(_app(), _args(tmp_path / "sp", clip(tmp_path), dead_url(), "--heartbeat-s", value))
    assert r.exit_code == 2, r.output
    assert "--heartbeat-s" in r.output and "1" in r.output
    assert not (tmp_path / "sp").exists()


def test_the_cli_names_pulses_it_could_not_store_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Full(Spool):
        def put(self, event_id: str, body: str) -> None:
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("rtcc.cli.sensor.Spool", Full)
    r = CliRunner().invoke(
        _app(), [*_args(tmp_path / "sp", clip(tmp_path), dead_url()), "--drain-timeout-s", "0"]
    )
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "3 could not be stored (3 lost)" in r.stderr
    assert "3 pulse(s) could not be stored" in r.stderr and "0 delivered directly, 3 lost" in r.stderr


def _sensor_with_a_small_disk(args: list[str], limit_bytes: int) -> subprocess.CompletedProcess[str]:
    """``rtcc sensor`` in a child whose files may not grow past ``limit_bytes`` (``ulimit -f``)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    exe = Path(sys.executable).parent / "rtcc"
    return subprocess.run(
        [str(exe), *args], preexec_fn=limit, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_full_disk_is_no_traceback_and_the_lost_pulses_are_counted(tmp_path: Path) -> None:
    six = six_shots(tmp_path)
    r = _sensor_with_a_small_disk(
        _args(tmp_path / "sp", six, dead_url(), "--drain-timeout-s", "0"), 48 * 1024
    )
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, r.stderr
    assert "6 pulse(s)" in r.stderr and "could not be stored" in r.stderr and "lost" in r.stderr


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_full_disk_still_delivers_when_the_center_is_reachable(
    center: Running, clients: dict[Role, httpx.AsyncClient], tmp_path: Path
) -> None:
    admin = clients[Role.admin]
    key = await add_device(admin, "ac-s121")
    six = six_shots(tmp_path)
    args = _args(tmp_path / "sp", six, center.url, "--drain-timeout-s", "30")
    args[args.index("ac-s12")] = "ac-s121"
    args[args.index("k" * 32)] = key
    r = await asyncio.to_thread(_sensor_with_a_small_disk, args, 48 * 1024)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, r.stderr  # the disk needs a person
    assert "6 pulse(s), 6 delivered" in r.stderr and "(0 lost)" in r.stderr
    if "kept in" in r.stderr and ", 0 kept in" not in r.stderr:  # delivered, but the full disk kept it
        assert "delivered but the spool could not remove them" in r.stderr

    async def six_in() -> list[dict[str, Any]] | None:
        items = await pulses(admin, "ac-s121")
        return items if len(items) == 6 else None

    await eventually(six_in, what="all six pulses at the center")
