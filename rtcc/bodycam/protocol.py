"""The body-cam command protocol: subjects, topics, signatures, a device's checks.

A command travels as a :class:`rtcc.events.DeviceCommand` (JSON). It carries
its ``command_id`` (the same on every delivery attempt), a random ``nonce``,
an ``expires_at`` and a ``signature``::

    signature = HMAC-SHA256(key=sha256_hex(device_key), msg=canonical(command))

``canonical`` joins the signed fields with ``|``; ``expires_at`` enters it
exactly as the JSON carries it (:func:`wire_time`: UTC, ``Z``, e.g.
``2026-11-23T03:18:17.429230Z``), so a device can check the signature over the
string it received without parsing and re-formatting the time.

The center stores only the SHA-256 of a device key, the device knows the key:
both can compute the signature, a third party on the MQTT broker cannot, so a
device can refuse forged commands. :func:`check_command` is what a device
does before obeying: right device, valid signature, not expired, nonce not seen.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, TypeAdapter

from rtcc.events import DeviceCommand

COMMANDS_PREFIX = "rtcc.devices"

COMMANDS = ("start_recording", "stop_recording")
"""Commands a body cam obeys."""

Verdict = Literal["execute", "repeat", "expired", "forged", "not_mine"]
"""What a device makes of a command: obey it, re-acknowledge it only, or ignore it."""


def commands_subject(device_id: str) -> str:
    """The bus subject (NATS) a device's commands are published on."""
    return f"{COMMANDS_PREFIX}.{device_id}.commands"


def commands_topic(device_id: str) -> str:
    """The MQTT topic a device subscribes to (the NATS MQTT listener maps it to the subject)."""
    return f"rtcc/devices/{device_id}/commands"


_WIRE_TIME: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)


def wire_time(value: datetime | None) -> str:
    """A time exactly as a command's JSON carries it (and as it is signed); ``""`` for None.

    The same serializer as :meth:`rtcc.events.Event.to_json` and
    ``model_dump(mode="json")``, so the signed string is the sent string. The
    center sends UTC (:func:`rtcc.bodycam.commands.command_event`), which JSON
    writes as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``.ffffff`` left out when the
    microseconds are 0).
    """
    if value is None:
        return ""
    out = _WIRE_TIME.dump_python(value, mode="json")
    assert isinstance(out, str)
    return out


def canonical(cmd: DeviceCommand, expires_at: str | None = None) -> bytes:
    """The signed bytes of a command (fields that must not be altered).

    ``command_id|device|command|nonce|expires_at|automatic`` in UTF-8, with
    ``expires_at`` as the JSON carries it (:func:`wire_time`) and ``automatic``
    as ``1``/``0``.

    Parameters
    ----------
    cmd : DeviceCommand
        The command.
    expires_at : str, optional
        The ``expires_at`` string as received (a device checking a command it
        got as JSON); by default :func:`wire_time` of ``cmd.expires_at``, which
        is what the center sends.
    """
    expires = wire_time(cmd.expires_at) if expires_at is None else expires_at
    return "|".join(
        [str(cmd.command_id), cmd.device, cmd.command, cmd.nonce, expires, "1" if cmd.automatic else "0"]
    ).encode()


def sign(key_hash: str, cmd: DeviceCommand, expires_at: str | None = None) -> str:
    """The signature of ``cmd`` with the hex SHA-256 of the device key (as the center stores it).

    ``expires_at``: the string as received, when checking a received command (see :func:`canonical`).
    """
    return hmac.new(key_hash.encode(), canonical(cmd, expires_at), hashlib.sha256).hexdigest()


def key_hash(key: str) -> str:
    """What the center stores of a device key (and the signing secret)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ReplayGuard:
    """A device's memory of the nonces it has obeyed (bounded, oldest forgotten first).

    Parameters
    ----------
    device_id : str
        The device.
    key : str
        The device key (the signature secret is its SHA-256).
    capacity : int
        Nonces remembered; commands expire long before this many arrive.
    """

    def __init__(self, device_id: str, key: str, capacity: int = 4096) -> None:
        self.device_id = device_id
        self._secret = key_hash(key)
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def check(self, cmd: DeviceCommand, now: datetime, expires_at: str | None = None) -> Verdict:
        """Whether to obey ``cmd`` now (and remember its nonce when so).

        ``expires_at`` is the command's ``expires_at`` string as received, when
        it came as JSON: the signature is checked over that string, as a
        device built from docs/bodycam-protocol.md does.
        """
        if cmd.device != self.device_id or cmd.command_id is None:
            return "not_mine"
        expected = sign(self._secret, cmd, expires_at)
        if not cmd.nonce or not hmac.compare_digest(expected.encode(), cmd.signature.encode()):
            return "forged"
        if cmd.nonce in self._seen:
            return "repeat"
        if cmd.expires_at is None or cmd.expires_at <= now:
            return "expired"
        self._seen[cmd.nonce] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return "execute"
