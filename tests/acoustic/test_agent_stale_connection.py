"""A kept-alive connection the center closes as a heartbeat goes out does not lose the heartbeat.

CI once lost a sensor's last heartbeat ("recording: false") this way: uvicorn closed the idle
kept-alive connection just as the agent reused it, the POST failed with "connection reset by peer",
and the agent counted the center as down. The server here does that on purpose: on each
connection it answers the first request and resets the connection on the second.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from rtcc.acoustic.agent import Uplink


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return body


class ResettingServer:
    """Answers 202 to the first request of each connection and resets the connection on the second."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[dict[str, object]] = []
        self.resets = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            body = _read_request(conn)
            if body is None:
                return
            self.accepted.append(json.loads(body))
            answer = json.dumps({"accepted": 1, "rejected": []}).encode()
            conn.sendall(
                b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(answer)}\r\n\r\n".encode()
                + answer
            )
            if _read_request(conn) is not None:  # the reused connection: reset it, answer nothing
                self.resets += 1
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[ResettingServer]:
    s = ResettingServer()
    yield s
    s.close()


def test_a_heartbeat_on_a_connection_reset_by_the_center_is_sent_again(server: ResettingServer) -> None:
    up = Uplink("ac-1", "k", f"http://127.0.0.1:{server.port}")
    try:
        beats = [{"event_id": f"hb-{i}", "type": "heartbeat", "recording": i == 0} for i in range(3)]
        assert all(up.check_in(hb) for hb in beats)
        assert server.resets >= 1, "the server never reset a reused connection: the test proves nothing"
        assert [e["events"][0]["event_id"] for e in server.accepted] == ["hb-0", "hb-1", "hb-2"]
        assert up.online is True and up.trusted is True
    finally:
        up.close()


def test_pulses_on_a_connection_reset_by_the_center_are_delivered(server: ResettingServer) -> None:
    up = Uplink("ac-1", "k", f"http://127.0.0.1:{server.port}")
    try:
        for i in range(3):
            sent = up.send("pulse", [{"event_id": f"p-{i}", "type": "pulse"}])
            assert sent is not None and sent.delivered == [f"p-{i}"]
        assert server.resets >= 1
    finally:
        up.close()


def test_a_delivery_stays_under_the_byte_budget_and_always_moves_on() -> None:
    from rtcc.acoustic.agent import _within_bytes

    rows = [(i, f"p-{i}", "x" * 60_000) for i in range(50)]  # 0.5 s of 48 kHz audio is ~60 kB of JSON
    batch = _within_bytes(rows, 512 * 1024)
    assert len(batch) == 8 and sum(len(b) for _, _, b in batch) <= 512 * 1024
    assert _within_bytes([(0, "big", "x" * 2_000_000)], 512 * 1024) == [(0, "big", "x" * 2_000_000)]
    assert _within_bytes(rows[:3], 512 * 1024) == rows[:3]
