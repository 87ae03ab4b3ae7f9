"""Acceptance (issue 3, "Camera ingest" / "Bad input"): ``rtcc plates video --center`` loses no pass.

A real center, a real video and the real upload route; between the command and the center sits a
TCP relay that plays a script of link faults (connections dropped before or after the center
answered, a refusing answer), as a flaky LTE link does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from rtcc.cli.plates import register
from rtcc.devices.buffer import Spool
from rtcc.roles import DeviceType
from rtcc.store.tables_plates import PlateReadRow
from tests.conftest import Running
from tests.plates.test_video import make_video

EMBEDDED = pytest.mark.parametrize("backend", ["embedded"])

START = "2026-11-21T12:00:00+00:00"


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "street.mp4"
    make_video(path)  # ABC1234 drives by, then XYZ987
    return path


class FlakyLink:
    """A TCP relay to the center; each new connection takes the next action of ``script``.

    ``close``: dropped before anything reaches the center; ``lose``: the request reaches the
    center, its answer is dropped; ``422``: a refusing answer without the center; after the
    script, ``forward`` (a plain relay, kept alive).
    """

    def __init__(self, upstream: str, script: list[str]) -> None:
        host, _, port = upstream.removeprefix("http://").rstrip("/").rpartition(":")
        self.upstream = (host, int(port))
        self.script = list(script)
        self.seen: list[str] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readuntil(b"\r\n")  # the request line: the script is for the uploads,
        if b"/api/v1/ingest/events" in first:  # the camera's heartbeats pass
            action = "forward"
        else:
            action = self.script.pop(0) if self.script else "forward"
            self.seen.append(action)
        if action == "close":
            writer.close()
            return
        if action == "422":
            await self._read_request(reader)
            body = json.dumps({"error": {"code": "validation_failed", "message": "bad box", "details": {}}})
            writer.write(
                b"HTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}".encode()
            )
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        up_writer.write(first)
        if action == "lose":
            sending = asyncio.create_task(self._pipe(reader, up_writer))
            await up_reader.read(1)  # the center has the upload and is answering
            writer.close()
            up_writer.close()
            sending.cancel()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there


async def run_video(video: Path, url: str, key: str, buffer: Path, *extra: str, start: str = START) -> Any:
    args = ["plates", "video", str(video), "--camera", "cam-b", "--heading", "0", "--start", start]
    args += ["--center", url, "--key", key, "--buffer", str(buffer), *extra]
    return await asyncio.to_thread(CliRunner().invoke, _cli(), args)


def stored_ids(center: Running) -> list[str]:
    assert center.center.store is not None
    rows = center.center.store.run(
        lambda s: s.scalars(select(PlateReadRow.id).where(PlateReadRow.device_id == "cam-b")).all()
    )
    return sorted(str(r) for r in rows)


def buffered(folder: Path) -> int:
    spool = Spool(folder)
    try:
        return len(spool)
    finally:
        spool.close()


async def provision(center: Running) -> str:
    return await center.center.provision_device("cam-b", DeviceType.plate_camera, "trailer", 41.88, -87.63)


async def test_center_unreachable_then_back_delivers_every_pass_exactly_once(
    video_file: Path, center: Running, tmp_path: Path
) -> None:
    key = await provision(center)
    # two uploads die on the link, then one reaches the center but its answer is lost
    link = FlakyLink(center.url, ["close", "close", "lose"])
    url = await link.start()
    try:
        result = await run_video(video_file, url, key, tmp_path / "buf")
    finally:
        await link.stop()
    assert result.exit_code == 0, result.output
    assert link.seen[:3] == ["close", "close", "lose"] and link.seen[3:] == ["forward"]
    assert "center not reachable" in result.stderr and "center reachable again" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [ln["plate"] for ln in lines] == ["ABC1234", "XYZ987"]  # oldest first
    assert [ln["read"]["plate"] for ln in lines] == ["ABC1234", "XYZ987"]
    # the retried upload after the lost answer was recognized as the same one: stored once
    assert stored_ids(center) == sorted(ln["read"]["id"] for ln in lines)
    assert buffered(tmp_path / "buf") == 0


@EMBEDDED
async def test_buffer_survives_a_restart_and_is_delivered_first(
    video_file: Path, center: Running, tmp_path: Path
) -> None:
    key = await provision(center)
    buf = tmp_path / "buf"
    first = await run_video(video_file, dead_url(), key, buf, "--drain-s", "0")
    assert first.exit_code == 3, first.output
    assert "2 pass(es) not delivered yet" in first.stderr and first.stdout == ""
    assert buffered(buf) == 2
    # the next run (another stretch of video, an hour later) reaches the center: the backlog goes first
    second = await run_video(video_file, center.url, key, buf, start="2026-11-21T13:00:00+00:00")
    assert second.exit_code == 0, second.output
    assert "2 pass(es) buffered by an earlier run" in second.stderr
    lines = [json.loads(line) for line in second.stdout.splitlines()]
    assert [ln["read"]["plate"] for ln in lines] == ["ABC1234", "XYZ987"] * 2
    assert [ln["time"][11:13] for ln in lines] == ["12", "12", "13", "13"]
    assert stored_ids(center) == sorted(ln["read"]["id"] for ln in lines)
    assert len(set(stored_ids(center))) == 4
    assert buffered(buf) == 0


@EMBEDDED
async def test_refused_key_stops_with_exit_2_and_keeps_the_passes(
    video_file: Path, center: Running, tmp_path: Path
) -> None:
    key = await provision(center)
    buf = tmp_path / "buf"
    result = await run_video(video_file, center.url, "wrong-" + key[6:], buf)
    assert result.exit_code == 2, result.output
    assert "refused the camera key" in result.stderr and "kept in" in result.stderr
    assert result.stdout == "" and stored_ids(center) == []
    assert buffered(buf) >= 1  # nothing read is lost: a corrected key delivers it
    again = await run_video(video_file, center.url, key, buf, "--drain-s", "60")
    assert again.exit_code == 0, again.output
    assert len(stored_ids(center)) == 2  # the kept passes and this run's are the same uploads
    assert buffered(buf) == 0


@EMBEDDED
async def test_a_pass_the_center_refuses_is_reported_and_kept_aside(
    video_file: Path, center: Running, tmp_path: Path
) -> None:
    key = await provision(center)
    link = FlakyLink(center.url, ["422"])
    url = await link.start()
    try:
        result = await run_video(video_file, url, key, tmp_path / "buf")
    finally:
        await link.stop()
    assert result.exit_code == 2, result.output
    assert "refused the pass ABC1234" in result.stderr and "refused" in result.stderr
    assert "kept with the reason in" in result.stderr
    assert "refused 1 pass(es)" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [ln["read"]["plate"] for ln in lines] == ["XYZ987"]
    assert len(stored_ids(center)) == 1 and buffered(tmp_path / "buf") == 0


def test_buffer_needs_a_center(video_file: Path, tmp_path: Path) -> None:
    args = ["plates", "video", str(video_file), "--camera", "c", "--buffer", str(tmp_path / "b")]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 2 and "--buffer goes with --center" in result.stderr
