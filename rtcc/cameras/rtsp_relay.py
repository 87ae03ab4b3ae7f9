"""A small RTSP server for tests, benchmarks and demos: FFmpeg encodes, this relays.

FFmpeg cannot serve RTSP itself (its ``-rtsp_flags listen`` only receives).
:class:`RtspTestStream` runs ``ffmpeg`` to encode H.264 and send it as RTP
over UDP to a loopback port, and an asyncio RTSP server that answers
``OPTIONS``/``DESCRIBE``/``SETUP``/``PLAY``/``TEARDOWN`` and relays the RTP
packets to each client interleaved on its TCP connection
(``RTP/AVP/TCP;interleaved=0-1``, RFC 2326 §10.12) — a real RTSP stream any
RTSP client (FFmpeg, VLC, a camera NVR) can play.

The picture is FFmpeg's ``testsrc`` by default, or raw BGR frames written to
:meth:`RtspTestStream.write_frame` (``source="pipe"``), e.g. frames with the
time encoded in them for latency measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Literal

MAX_REQUEST_BODY = 65536
"""Largest RTSP request body read (clients of this server send none; larger is refused)."""


def _free_udp_pair() -> int:
    """An even UDP port whose successor is free too (RTP and RTCP)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1]) & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as x,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as y,
            ):
                x.bind(("127.0.0.1", port))
                y.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise OSError("no free UDP port pair")


def _die_with_parent() -> None:
    """In the child: ask Linux to end it when its parent dies (no orphaned encoders)."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, relay: RtspTestStream) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay._fan_out(data)


class RtspTestStream:
    """FFmpeg → RTP/UDP → this RTSP server → clients.

    Parameters
    ----------
    size : (int, int)
        Width and height, pixels.
    fps : float
        Frames per second.
    source : {"testsrc", "pipe"}
        FFmpeg's test pattern, or BGR frames from :meth:`write_frame`.
    path : str
        The stream's path in the URL.
    """

    def __init__(
        self,
        size: tuple[int, int] = (320, 240),
        fps: float = 10.0,
        source: Literal["testsrc", "pipe"] = "testsrc",
        path: str = "cam",
    ) -> None:
        self.size, self.fps, self.source, self.path = size, fps, source, path
        self.sessions_total = 0
        self.playing: set[asyncio.StreamWriter] = set()
        self._proc: asyncio.subprocess.Process | None = None
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="rtcc-rtsp-"))
        self._sdp = ""
        self.port = 0

    @staticmethod
    def available() -> bool:
        """Whether ``ffmpeg`` is on the PATH."""
        return shutil.which("ffmpeg") is not None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.path}"

    async def start(self) -> str:
        """Start FFmpeg and the server; returns the ``rtsp://`` URL.

        When it fails (FFmpeg refuses the size, exits, or writes no stream description in
        time) everything it started is stopped and its temporary folder removed before the
        error is raised.

        Raises
        ------
        RuntimeError
            FFmpeg exited or wrote no stream description.
        OSError
            No free port, or FFmpeg could not be started.
        """
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> str:
        loop = asyncio.get_running_loop()
        rtp_port = _free_udp_pair()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Rtp(self), local_addr=("127.0.0.1", rtp_port)
        )
        self._udp = transport
        sdp_file = self._tmp / "stream.sdp"
        w, h = self.size
        if self.source == "testsrc":
            src = ["-re", "-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate={self.fps:g}"]
        else:
            src = [
                "-f",
                "rawvideo",
                "-pix_fmt",
                "bgr24",
                "-s",
                f"{w}x{h}",
                "-r",
                f"{self.fps:g}",
                "-i",
                "pipe:0",
            ]
        args = [
            "-hide_banner", "-loglevel", "error", "-nostdin" if self.source == "testsrc" else "-y",
            *src, "-an", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-pix_fmt", "yuv420p", "-g", str(max(1, round(self.fps))), "-bf", "0",
            "-f", "rtp", "-sdp_file", str(sdp_file), f"rtp://127.0.0.1:{rtp_port}?pkt_size=1200",
        ]  # fmt: skip
        self._proc = await asyncio.create_subprocess_exec(
            "ffmpeg",
            *args,
            stdin=asyncio.subprocess.PIPE if self.source == "pipe" else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        if self.source == "pipe":
            # FFmpeg writes the SDP once it has the first frame
            import numpy as np

            self.write_frame(np.zeros((h, w, 3), np.uint8))
        for _ in range(200):
            if sdp_file.exists() and "m=video" in sdp_file.read_text():
                break
            if self._proc.returncode is not None:
                raise RuntimeError("ffmpeg exited before writing the stream description")
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("ffmpeg wrote no stream description within 10 s")
        self._sdp = self._describe(sdp_file.read_text())
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.url

    @staticmethod
    def _describe(sdp: str) -> str:
        lines = [ln for ln in sdp.replace("\r\n", "\n").split("\n") if ln and not ln.startswith("SDP:")]
        out: list[str] = []
        for ln in lines:
            if ln.startswith("c="):
                ln = "c=IN IP4 0.0.0.0"
            if ln.startswith("m=video"):
                ln = re.sub(r"^m=video \d+", "m=video 0", ln)
                out.append(ln)
                out.append("a=control:streamid=0")
                continue
            out.append(ln)
        return "\r\n".join(out) + "\r\n"

    def write_frame(self, frame: Any) -> None:
        """Feed one BGR frame (``source="pipe"``)."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(frame.tobytes())

    async def drain(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            await self._proc.stdin.drain()

    def _fan_out(self, packet: bytes) -> None:
        head = b"$\x00" + len(packet).to_bytes(2, "big")
        for w in list(self.playing):
            if w.is_closing():
                self.playing.discard(w)
                continue
            if w.transport.get_write_buffer_size() > 4_000_000:
                continue  # a stuck client loses packets, not the others
            w.write(head + packet)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = None
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # interleaved RTCP from the client: skip it
                    hdr = await reader.readexactly(3)
                    await reader.readexactly(int.from_bytes(hdr[1:3], "big"))
                    continue
                head = first + await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split(" ", 1)[0]
                hdrs = {
                    k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
                }
                cseq = hdrs.get("cseq", "0")
                length = hdrs.get("content-length", "0")
                size = int(length) if length.isdigit() else -1  # isdigit: no sign, no spaces
                if not 0 <= size <= MAX_REQUEST_BODY:
                    # where this request ends is unknown: answer and hang up
                    status = "413 Request Entity Too Large" if size > MAX_REQUEST_BODY else "400 Bad Request"
                    writer.write(f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n\r\n".encode())
                    await writer.drain()
                    break
                if size:
                    await reader.readexactly(size)
                extra = ""
                body = ""
                if method == "OPTIONS":
                    extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
                elif method == "DESCRIBE":
                    body = self._sdp
                    extra = f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
                elif method == "SETUP":
                    session = session or f"{id(writer) & 0xFFFFFFFF:08x}"
                    extra = (
                        f"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: {session};timeout=60\r\n"
                    )
                elif method in ("PLAY", "GET_PARAMETER", "TEARDOWN"):
                    extra = f"Session: {session}\r\n" if session else ""
                else:
                    writer.write(f"RTSP/1.0 501 Not Implemented\r\nCSeq: {cseq}\r\n\r\n".encode())
                    continue
                msg = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
                msg += f"Content-Length: {len(body.encode())}\r\n\r\n{body}" if body else "\r\n"
                writer.write(msg.encode())
                await writer.drain()
                if method == "PLAY" and writer not in self.playing:
                    self.sessions_total += 1
                    self.playing.add(writer)
                if method == "TEARDOWN":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.playing.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self.playing):
                w.close()
            self.playing.clear()
            await self._server.wait_closed()
            self._server = None
        if self._proc is not None:
            if self._proc.returncode is None:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
                self._proc.terminate()
                try:
                    await asyncio.wait_for(self._proc.wait(), 5)
                except TimeoutError:
                    self._proc.kill()
                    await self._proc.wait()
            self._proc = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        shutil.rmtree(self._tmp, ignore_errors=True)
