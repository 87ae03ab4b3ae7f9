"""Session 12: the sensor's time stamps — clock steps applied at once, recordings on stdin stamped by
sample count, and a pulse keeps the anchor in force at its onset.

Audit findings: a clock step (GPS lock gained) was applied up to ~10 s late (the 5 s window's
minimum hid it) while the heartbeat already said ``gps``; ``ffmpeg … -f s16le - | rtcc sensor
--stdin`` stamped 60 s of audio within ~5 s of wall time, and times went backwards.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rtcc.acoustic.agent import AudioSource, PcmSource, SensorAgent, Uplink
from rtcc.acoustic.clock import ClockQuality
from rtcc.cli.sensor import register
from rtcc.devices.buffer import Spool
from tests.acoustic.test_agent import HERE, RATE, SimulatedClock, dead_url
from tests.acoustic.test_detect import friedlander, in_noise

BLOCK = RATE // 10
LATENCY_S = 0.001


class SteppingClock(SimulatedClock):
    """Simulated UTC whose offset steps (GPS lock gained) when :attr:`step` is set."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.step = 0.0

    def now(self) -> float:
        return self.t + self.step

    @property
    def quality(self) -> ClockQuality:
        return "gps" if self.step else "configured"


class Card(AudioSource):
    """A live card delivering 0.1 s blocks ``LATENCY_S`` after their last sample.

    ``step_at_s``: the clock steps by ``step_s`` just after that much audio was captured.
    ``late``: {block end s: extra delay} — blocks that arrive late (scheduling, a backlog).
    After each block the agent's heartbeat clock quality is noted in :attr:`quality`.
    """

    live = True

    def __init__(
        self,
        x: np.ndarray,
        clock: SteppingClock,
        *,
        step_at_s: float = 1e9,
        step_s: float = 0.0,
        late: dict[float, float] | None = None,
    ) -> None:
        self.rate_hz = RATE
        self.x, self.clock, self.step_at_s, self.step_s = x, clock, step_at_s, step_s
        self.late = late or {}
        self.start = clock.t
        self.agent: SensorAgent | None = None
        self.quality: dict[float, str] = {}

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(0, self.x.size, BLOCK):
            end_s = round((i + BLOCK) / RATE, 3)
            self.clock.t = self.start + end_s + LATENCY_S + self.late.get(end_s, 0.0)
            if end_s > self.step_at_s:
                self.clock.step = self.step_s
            yield self.x[i : i + BLOCK]
            if self.agent is not None:
                self.quality[end_s] = self.agent.heartbeat().clock_quality


def _audio(shots: list[float], seconds: float) -> np.ndarray:
    return in_noise(RATE, friedlander(RATE, shots, seconds), 25.0, np.random.default_rng(21))


def _run(tmp_path: Path, source: AudioSource, clock: SimulatedClock) -> tuple[SensorAgent, list[float]]:
    a = SensorAgent("ac-s12", HERE, Uplink("ac-s12", "k" * 32, None), Spool(tmp_path / "sp"), clock)
    if isinstance(source, Card):
        source.agent = a
    a.run(source, drain_timeout_s=0)
    stamps = sorted(
        datetime.fromisoformat(json.loads(b)["occurred_at"]).timestamp() for _, b in a.spool.peek(50)
    )
    a.spool.close()
    return a, stamps


def test_a_clock_step_is_applied_at_once_and_the_heartbeat_tells_the_truth_meanwhile(tmp_path: Path) -> None:
    shots = [2.9, 3.6, 6.5]
    clock = SteppingClock(1.8e9)
    card = Card(_audio(shots, 8.0), clock, step_at_s=3.05, step_s=2.0)  # GPS lock: +2 s
    a, stamps = _run(tmp_path, card, clock)
    old = card.start + LATENCY_S  # the anchor before the step (UTC of sample 0)
    assert len(stamps) == 3
    # the onset before the step keeps the old anchor; the ones after it take the new one at once
    assert abs(stamps[0] - (old + 2.9)) * 1000 < 1.0
    assert abs(stamps[1] - (old + 2.0 + 3.6)) * 1000 < 1.0
    assert abs(stamps[2] - (old + 2.0 + 6.5)) * 1000 < 1.0
    # while the step is only suspected, the pulses are still stamped on the old clock: so says the
    # heartbeat; once applied (three agreeing readings), it says gps
    assert card.quality[3.0] == "configured"
    assert card.quality[3.1] == card.quality[3.2] == "configured"
    assert card.quality[3.3] == card.quality[7.0] == "gps"
    assert a.clock_quality == "gps"


def test_a_late_block_or_a_draining_backlog_is_no_clock_step(tmp_path: Path) -> None:
    shots = [3.5, 6.5]
    clock = SteppingClock(1.8e9)
    late = {2.0: 0.3}  # one block 0.3 s late
    late |= {round(4.1 + 0.1 * k, 3): 0.4 - 0.1 * k for k in range(5)}  # 0.4 s stalled, then caught up
    card = Card(_audio(shots, 8.0), clock, late=late)
    _, stamps = _run(tmp_path, card, clock)
    old = card.start + LATENCY_S
    assert len(stamps) == 2
    assert abs(stamps[0] - (old + 3.5)) * 1000 < 1.0
    assert abs(stamps[1] - (old + 6.5)) * 1000 < 1.0
    assert set(card.quality.values()) == {"configured"}


class AheadSource(AudioSource):
    """Live-looking audio that arrives ten times faster than real time (a recording piped in)."""

    live = True

    def __init__(self, x: np.ndarray, clock: SimulatedClock) -> None:
        self.rate_hz = RATE
        self.x, self.clock = x, clock

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(0, self.x.size, BLOCK):
            self.clock.t += 0.01
            yield self.x[i : i + BLOCK]


def test_a_pulse_keeps_the_anchor_in_force_at_its_onset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A re-anchor between an onset and its detection (0.45 s later) does not move the pulse back."""
    clock = SimulatedClock(1.8e9)
    with caplog.at_level(logging.WARNING, logger="rtcc.acoustic.agent"):
        _, stamps = _run(tmp_path, AheadSource(_audio([2.0, 4.6], 6.5), clock), clock)
    assert len(stamps) == 2
    assert abs(stamps[1] - stamps[0] - 2.6) * 1000 < 1.0  # in order, as far apart as in the audio
    assert any("runs ahead of the clock" in r.getMessage() for r in caplog.records)


# --- a recording on stdin -----------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep `sensor` a named sub-command
    return app


SHOTS_12 = [1.0, 6.0, 11.0]


def _pcm(shots: list[float], seconds: float) -> bytes:
    x = _audio(shots, seconds)
    return (x / np.abs(x).max() * 30000).astype("<i2").tobytes()


def _stdin_args(spool: Path, *extra: str) -> list[str]:
    args = ["sensor", "--device-id", "ac-s12", "--key", "k" * 32, "--lat", str(HERE.lat)]
    args += ["--lon", str(HERE.lon), "--center", dead_url(), "--spool-dir", str(spool), "--gpsd", "none"]
    return [*args, "--stdin", "--rate", str(RATE), "--drain-timeout-s", "0", *extra]


def _spooled_stamps(folder: Path) -> list[float]:
    spool = Spool(folder)
    try:
        return sorted(
            datetime.fromisoformat(json.loads(b)["occurred_at"]).timestamp() for _, b in spool.peek(50)
        )
    finally:
        spool.close()


def test_a_recording_on_stdin_is_stamped_from_start_utc_by_sample_count(tmp_path: Path) -> None:
    start = "2024-05-01T22:14:03.25Z"
    args = _stdin_args(tmp_path / "sp", "--as-fast-as-possible", "--start-utc", start)
    r = CliRunner().invoke(_app(), args, input=_pcm(SHOTS_12, 12.0))
    assert r.exit_code == 3, r.output  # the center is unreachable: kept
    assert "3 pulse(s)" in r.stderr
    t0 = datetime(2024, 5, 1, 22, 14, 3, 250000, tzinfo=UTC).timestamp()
    stamps = _spooled_stamps(tmp_path / "sp")
    assert len(stamps) == 3
    for t, shot in zip(stamps, SHOTS_12, strict=True):
        assert abs(t - t0 - shot) * 1000 < 0.1


def test_a_recording_on_stdin_without_a_start_keeps_its_own_timing(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        _app(), _stdin_args(tmp_path / "sp", "--as-fast-as-possible"), input=_pcm(SHOTS_12, 12.0)
    )
    assert r.exit_code == 3, r.output
    stamps = _spooled_stamps(tmp_path / "sp")
    assert len(stamps) == 3
    assert abs(stamps[1] - stamps[0] - 5.0) * 1000 < 0.1 and abs(stamps[2] - stamps[1] - 5.0) * 1000 < 0.1


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--start-utc", "2024-05-01T22:14:03Z"], "--as-fast-as-possible"),  # live audio has no start
        (["--as-fast-as-possible", "--start-utc", "yesterday"], "ISO 8601"),
    ],
)
def test_start_utc_misuse_is_refused_up_front(tmp_path: Path, extra: list[str], says: str) -> None:
    r = CliRunner().invoke(_app(), _stdin_args(tmp_path / "sp", *extra), input=b"")
    assert r.exit_code == 2, r.output
    assert "--start-utc" in r.stderr and says in r.stderr
    assert not (tmp_path / "sp").exists()


def test_pcm_source_recording_is_not_live() -> None:
    assert PcmSource(io.BytesIO(b""), rate_hz=RATE).live
    assert not PcmSource(io.BytesIO(b""), rate_hz=RATE, live=False).live
