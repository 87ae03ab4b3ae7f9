"""Audit 8: a video whose timestamps do not start at 0 (MPEG-TS, DVR exports) is timed from frame 0."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from rtcc.plates.video import frames
from rtcc.roles import DeviceType, Role
from tests.conftest import Running
from tests.plates.test_video import _cli, make_video

OFFSET_S = 36_000  # ten hours, as `ffmpeg -c copy -output_ts_offset 36000` does


def remux_with_offset(src: Path, dst: Path, offset_s: int) -> None:
    """Copy the video packets of ``src`` into an MPEG-TS ``dst``, their timestamps moved by ``offset_s``."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        tb = in_stream.time_base
        assert tb is not None
        shift = int(Fraction(offset_s) / tb)
        for packet in inp.demux(in_stream):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.pts = None if packet.pts is None else packet.pts + shift
            packet.dts += shift
            packet.stream = out_stream
            out.mux(packet)


@pytest.fixture(scope="module")
def offset_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("video-offset")
    make_video(folder / "street.mp4")
    remux_with_offset(folder / "street.mp4", folder / "off.ts", OFFSET_S)
    return folder / "off.ts"


def test_the_offset_file_really_starts_late(offset_video: Path) -> None:
    with av.open(str(offset_video)) as c:
        first = next(c.decode(c.streams.video[0]))
        assert first.time is not None and first.time >= OFFSET_S
    times = [f.t for f in frames(str(offset_video), every_n=3)]
    assert times[0] == 0.0 and times[1] == pytest.approx(0.3, abs=0.01)  # 10 fps, counted from frame 0
    assert len(times) == 8 and times[-1] == pytest.approx(2.1, abs=0.01)


def test_cli_video_times_passes_from_start(offset_video: Path) -> None:
    args = ["plates", "video", str(offset_video), "--camera", "cam-v", "--every-n", "3", "--heading", "0"]
    result = CliRunner().invoke(_cli(), [*args, "--start", "2026-11-22T14:30:00Z"])
    assert result.exit_code == 0, result.output
    passes = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["plate"] for p in passes] == ["ABC1234", "XYZ987"]
    times = [datetime.fromisoformat(p["time"]) for p in passes]
    start = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
    assert [p["first_t"] for p in passes] == [0.0, pytest.approx(1.5)]  # not 36000 s
    assert times == [start + timedelta(seconds=p["best_t"]) for p in passes]
    assert all(start <= t < start + timedelta(seconds=3) for t in times)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_cli_video_delivers_offset_passes_to_the_center(
    offset_video: Path, center: Running, clients: dict[Role, object], tmp_path: Path
) -> None:
    """No --start: the passes are stamped from when the first frame was read, which the center accepts."""
    key = await center.center.provision_device("cam-v", DeviceType.plate_camera, "video cam", 41.88, -87.63)
    args = ["plates", "video", str(offset_video), "--camera", "cam-v", "--heading", "0"]
    args += ["--center", center.url, "--key", key, "--buffer", str(tmp_path / "buf")]
    before = datetime.now(UTC)
    result = await asyncio.to_thread(CliRunner().invoke, _cli(), args)
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    passes = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["read"]["plate"] for p in passes] == ["ABC1234", "XYZ987"]
    for p in passes:
        assert before <= datetime.fromisoformat(p["read"]["read_at"]) <= after + timedelta(seconds=3)
