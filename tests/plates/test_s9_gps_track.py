"""Session 9: a moving camera's GPS track (GPX, NMEA 0183, CSV) places each vehicle pass.

The maths (interpolation, heading on the shorter arc, bearing between fixes, the gap rule), the
three readers and their refusals, and ``rtcc plates video --gps-track`` end to end: printed lines
and the reads the real center stores carry the position interpolated at each pass's best frame.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.geo import bearing_deg
from rtcc.plates.gps_track import (
    Fix,
    GpsTrack,
    TrackError,
    interpolate_heading,
    load_track,
    nmea_checksum,
    parse_track,
)
from rtcc.roles import DeviceType
from tests.conftest import Running
from tests.plates.test_video import _cli, make_video

T0 = datetime(2026, 11, 22, 14, 30, 0, tzinfo=UTC)


def _fix(at: datetime, lat: float, lon: float, course: float | None = None) -> Fix:
    return Fix(at.timestamp(), lat, lon, course)


def _nmea(body: str) -> str:
    return f"${body}*{nmea_checksum(body):02X}"


def test_nmea_checksum_of_a_known_sentence() -> None:
    # the NMEA 0183 reference example sentence and its published checksum
    assert nmea_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W") == 0x6A


def test_position_is_linear_between_fixes_and_none_beyond_the_gap() -> None:
    track = GpsTrack(
        [
            _fix(T0, 41.0, -87.0),
            _fix(T0 + timedelta(seconds=10), 41.001, -86.998),
            _fix(T0 + timedelta(seconds=60), 41.002, -86.998),
        ]
    )
    mid = track.at(T0 + timedelta(seconds=2.5), max_gap_s=10)
    assert mid is not None
    assert mid.lat == pytest.approx(41.00025) and mid.lon == pytest.approx(-86.9995)
    # no course in the file: the bearing of the segment the time falls in
    assert mid.heading_deg == pytest.approx(bearing_deg(41.0, -87.0, 41.001, -86.998))
    assert mid.gap_s == pytest.approx(2.5)
    # 35 s into a 50 s gap between fixes: 25 s from the nearest fix
    assert track.at(T0 + timedelta(seconds=35), max_gap_s=10) is None
    assert track.at(T0 + timedelta(seconds=35), max_gap_s=30) is not None
    # before the first fix: that fix itself (no extrapolation) while within the gap
    before = track.at(T0 - timedelta(seconds=4), max_gap_s=5)
    assert before is not None and (before.lat, before.lon) == (41.0, -87.0)
    assert track.at(T0 - timedelta(seconds=6), max_gap_s=5) is None
    assert track.at(T0 + timedelta(seconds=71), max_gap_s=10) is None


def test_heading_from_the_course_takes_the_shorter_arc() -> None:
    assert interpolate_heading(350.0, 10.0, 0.5) == pytest.approx(0.0)
    assert interpolate_heading(10.0, 350.0, 0.25) == pytest.approx(5.0)
    assert interpolate_heading(90.0, 180.0, 0.5) == pytest.approx(135.0)
    track = parse_track(
        "time,lat,lon,heading_deg\n"
        f"{T0.isoformat()},41.0,-87.0,350\n"
        f"{(T0 + timedelta(seconds=4)).isoformat()},41.0001,-87.0,10\n"
    )
    at = track.at(T0 + timedelta(seconds=2), max_gap_s=10)
    assert at is not None and at.heading_deg == pytest.approx(0.0, abs=1e-9)


def test_a_stopped_car_gives_no_bearing() -> None:
    track = parse_track(
        f"time,lat,lon\n{T0.isoformat()},41.0,-87.0\n{(T0 + timedelta(seconds=5)).isoformat()},41.0,-87.0\n"
    )
    at = track.at(T0 + timedelta(seconds=1), max_gap_s=10)
    assert at is not None and at.heading_deg is None


def test_nmea_log_bad_lines_are_counted_and_skipped() -> None:
    lines = [
        _nmea("GPRMC,143000.00,A,4152.800,N,08737.800,W,10.0,045.0,221126,,,A"),
        _nmea("GPGGA,143000.00,4152.800,N,08737.800,W,1,08,0.9,180.0,M,-34.0,M,,"),  # ignored
        "$GPRMC,143001.00,A,4152.900,N,08737.700,W,10.0,045.0,221126,,,A*00",  # bad checksum
        "GPRMC without a dollar",  # garbage
        _nmea("GNRMC,143002.00,A,4152.810,N,08737.790,W,10.0,047.0,221126,,,A"),
        _nmea("GPRMC,143003.00,V,,,,,,,221126,,,N"),  # no fix: skipped, not bad
        _nmea("GPRMC,143004.00,A,4199.000,N,08737.790,W,10.0,047.0,221126,,,A"),  # 99 minutes: bad
    ]
    track = parse_track("\n".join(lines))
    assert len(track) == 2 and track.skipped == 3
    first = track.fixes[0]
    assert first.t == T0.timestamp()
    assert first.lat == pytest.approx(41 + 52.8 / 60) and first.lon == pytest.approx(-(87 + 37.8 / 60))
    at = track.at(T0 + timedelta(seconds=1), max_gap_s=5)
    assert at is not None and at.heading_deg == pytest.approx(46.0)
    assert at.lat == pytest.approx(41 + 52.805 / 60)


def test_gpx_track_points_with_their_times(tmp_path: Path) -> None:
    gpx = tmp_path / "drive.gpx"
    gpx.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="41.88" lon="-87.63"><ele>180</ele><time>2026-11-22T14:30:00Z</time></trkpt>'
        '<trkpt lat="41.88" lon="-87.629"><time>2026-11-22T14:30:10.000Z</time></trkpt>'
        '<trkpt lat="41.88" lon="-87.628"></trkpt>'  # no time: skipped and counted
        "</trkseg></trk></gpx>"
    )
    track = load_track(gpx)
    assert len(track) == 2 and track.skipped == 1
    at = track.at(T0 + timedelta(seconds=5), max_gap_s=10)
    assert at is not None and at.lon == pytest.approx(-87.6295)
    assert at.heading_deg == pytest.approx(90.0, abs=0.01)  # driving east


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("time,lat,lon\n2026-11-22T14:30:00,41.0,-87.0\n", "no time zone"),
        ("time,lat,lon\n2026-11-22T14:30:00Z,95.0,-87.0\n", "out of range"),
        ("time,lat,lon\n2026-11-22T14:30:00Z,41.0,-87.0,400\n", "out of range"),
        ("time,lat,lon\n2026-11-22T14:30:00Z,north,-87.0\n", "must be numbers"),
        ("time,lat,lon\n", "no GPS fix"),
        (
            '<gpx><trk><trkseg><trkpt lat="41" lon="-87"><time>2026-11-22T14:30:00</time></trkpt>',
            "not well-formed",
        ),
        (
            '<gpx><trk><trkseg><trkpt lat="41" lon="-87"><time>2026-11-22T14:30:00</time></trkpt>'
            "</trkseg></trk></gpx>",
            "no time zone",
        ),
        (
            '<gpx><trk><trkseg><trkpt lat="41" lon="-200"><time>2026-11-22T14:30:00Z</time></trkpt>'
            "</trkseg></trk></gpx>",
            "out of range",
        ),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><gpx/>', "DOCTYPE"),
        ("$GPRMC,1*00\n$GPRMC,2*00\n", "no valid RMC fix"),
    ],
)
def test_unreadable_tracks_are_refused(text: str, why: str) -> None:
    with pytest.raises(TrackError, match=why):
        parse_track(text)


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video-gps") / "street.mp4"
    make_video(path)
    return path


def test_cli_refuses_a_bad_track_before_reading_the_video(tmp_path: Path) -> None:
    not_a_video = tmp_path / "bad.mp4"
    not_a_video.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    track = tmp_path / "track.csv"
    track.write_text("time,lat,lon\n2026-11-22T14:30:00,41.0,-87.0\n")
    args = [
        "plates",
        "video",
        str(not_a_video),
        "--camera",
        "c",
        "--gps-track",
        str(track),
        "--start",
        T0.isoformat(),
    ]
    r = CliRunner().invoke(_cli(), args)
    assert r.exit_code == 2
    assert "not a readable GPS track" in r.stderr and "no time zone" in r.stderr
    assert "cannot open video" not in r.stderr  # the video was not touched
    track.write_text(f"time,lat,lon\n{T0.isoformat()},41.0,-87.0\n")
    r = CliRunner().invoke(_cli(), args[:-2])  # a file without --start cannot be put on a track
    assert r.exit_code == 2 and "needs --start" in r.stderr


def _track_csv(path: Path, seconds: int) -> Path:
    """A car driving north-east: a fix every second for ``seconds`` s, with its course."""
    rows = ["time,lat,lon,heading_deg"]
    for k in range(seconds + 1):
        at = T0 + timedelta(seconds=k)
        rows.append(f"{at.isoformat()},{41.88 + 0.0001 * k:.7f},{-87.63 + 0.0001 * k:.7f},{40 + k}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _expected(t: float) -> tuple[float, float, float]:
    return 41.88 + 0.0001 * t, -87.63 + 0.0001 * t, 40 + t


def test_cli_prints_each_pass_at_its_track_position(video_file: Path, tmp_path: Path) -> None:
    # the track ends at 1 s: ABC1234 (frames 0-0.8 s) is on it, XYZ987 (1.5-2.3 s) is over 0.4 s off
    track = _track_csv(tmp_path / "t.csv", 1)
    args = ["plates", "video", str(video_file), "--camera", "car-1", "--every-n", "3"]
    args += ["--start", T0.isoformat(), "--gps-track", str(track), "--gps-max-gap-s", "0.4"]
    args += ["--lat", "41.5", "--lon", "-87.5"]
    r = CliRunner().invoke(_cli(), args)
    assert r.exit_code == 0, r.output
    lines = {x["plate"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert set(lines) == {"ABC1234", "XYZ987"}
    on = lines["ABC1234"]
    lat, lon, heading = _expected(on["best_t"])
    assert on["gps_fix"] is True and datetime.fromisoformat(on["time"]) == T0 + timedelta(
        seconds=on["best_t"]
    )
    assert on["lat"] == pytest.approx(lat, abs=1e-7) and on["lon"] == pytest.approx(lon, abs=1e-7)
    assert on["heading_deg"] == pytest.approx(heading, abs=0.01)
    assert on["direction"] == "NE"  # a moving camera's pass goes the track's way
    off = lines["XYZ987"]
    assert off["gps_fix"] is False and (off["lat"], off["lon"]) == (41.5, -87.5)  # --lat/--lon fallback
    assert "1 of 2 pass(es) more than 0.4 s from any GPS fix" in r.stderr


@pytest.mark.parametrize("backend", ["embedded"])
async def test_cli_sends_each_pass_with_its_track_position(
    video_file: Path, center: Running, tmp_path: Path
) -> None:
    key = await center.center.provision_device("car-2", DeviceType.plate_camera, "patrol car", 41.0, -87.0)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    rows = ["time,lat,lon"]  # no course: the heading is the bearing between fixes (due north)
    for k in range(5):
        rows.append(f"{(start + timedelta(seconds=k)).isoformat()},{41.88 + 0.0001 * k:.7f},-87.63")
    track = tmp_path / "t.csv"
    track.write_text("\n".join(rows) + "\n")
    args = ["plates", "video", str(video_file), "--camera", "car-2", "--start", start.isoformat()]
    args += ["--gps-track", str(track), "--center", center.url, "--key", key, "--buffer", str(tmp_path / "b")]
    result = await asyncio.to_thread(CliRunner().invoke, _cli(), args)
    assert result.exit_code == 0, result.output
    sent = {x["plate"]: x for x in map(json.loads, result.stdout.splitlines())}
    assert set(sent) == {"ABC1234", "XYZ987"}
    from rtcc.plates.reads import search_reads

    store = center.center.store
    assert store is not None
    for plate, line in sent.items():
        [row] = await store.read(lambda s, plate=plate: search_reads(s, plate=plate, mode="exact", limit=5))
        assert row.read_at == start + timedelta(seconds=line["best_t"])
        assert row.lat == pytest.approx(41.88 + 0.0001 * line["best_t"], abs=1e-6)
        assert row.lon == pytest.approx(-87.63) and row.lon != -87.0  # the track's, not the device's
        assert row.direction == "N" and line["read"]["direction"] == "N"
