"""Fixtures for the camera tests: a real SMTP server on loopback, and mail helpers."""

from __future__ import annotations

import email
import io
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import av
import numpy as np
import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received."""

    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(
        self, server: Any, session: Any, envelope: Any
    ) -> str:  # aiosmtpd calls it by this name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def body(msg: Message) -> str:
        payload = msg.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode()

    def link_param(self, address: str, name: str) -> str:
        """The value of ``?name=`` in the newest mail to ``address`` that has one."""
        for m in reversed(self.to(address)):
            found = re.search(rf"[?&]{name}=([A-Za-z0-9_\-]+)", self.body(m))
            if found:
                return found.group(1)
        raise AssertionError(f"no mail to {address} with a {name} link")


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    ctrl = Controller(box, hostname="127.0.0.1", port=box.port)
    ctrl.start()
    try:
        yield box
    finally:
        ctrl.stop()


def smtp_settings(box: Mailbox, **extra: Any) -> dict[str, Any]:
    return {"notifier": "smtp", "smtp_host": "127.0.0.1", "smtp_port": box.port, **extra}


def mp4_clip(frames: int = 10, shade: int = 0) -> bytes:
    """A real small MPEG-4 clip (64x48, ``frames`` frames): uploads are probed for a decodable frame."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            img = np.full((48, 64, 3), (shade + i * 20) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()
