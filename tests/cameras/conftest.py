"""Fixtures for the camera tests: a real SMTP server on loopback, and mail helpers."""

from __future__ import annotations

import email
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

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
