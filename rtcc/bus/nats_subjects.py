"""NATS names: MQTT topic mapping, durable consumer names, subject checks, safe URLs.

Used by :mod:`rtcc.bus.nats` (see its docstring for the delivery model).
"""

from __future__ import annotations

import hashlib
import logging
import re
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


log = logging.getLogger("rtcc.bus.nats")

_MSG_ID_HEADER = "Nats-Msg-Id"
_SETTING_HINT = "check the setting bus.nats_url (environment RTCC_BUS__NATS_URL)"

# JetStream API error codes (nats-server's errors.json).
_ERR_STREAM_NAME_IN_USE = 10058
_ERR_STREAM_SUBJECT_OVERLAP = 10065
_ERR_JETSTREAM_NOT_ENABLED = (10039, 10076)

_NAME_OK = re.compile(r"^[A-Za-z0-9_-]+$")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def mqtt_topic_to_subject(topic: str) -> str:
    """Map an MQTT topic (or topic filter) to the NATS subject the server uses.

    This mirrors what nats-server 2.9's MQTT listener does, so a subscription
    can be written for what devices publish:

    * ``/`` separates levels in MQTT and ``.`` separates tokens in NATS, so
      ``rtcc/sensors/s1/pulse`` becomes ``rtcc.sensors.s1.pulse``;
    * an empty level becomes a ``/`` token: ``/a`` → ``/.a``, ``a/`` → ``a./``,
      ``a//b`` → ``a./.b``;
    * the filter wildcards map to their NATS forms: ``+`` → ``*``, ``#`` → ``>``.

    Parameters
    ----------
    topic : str
        An MQTT topic name or topic filter.

    Returns
    -------
    str
        The NATS subject (or subject filter).

    Raises
    ------
    ValueError
        When the topic is empty or contains ``.`` or a space: nats-server 2.9
        refuses those (2.10 and later map ``.`` to ``//``), so no device can
        publish on such a topic.

    Examples
    --------
    >>> mqtt_topic_to_subject("rtcc/sensors/s1/pulse")
    'rtcc.sensors.s1.pulse'
    >>> mqtt_topic_to_subject("rtcc/sensors/+/#")
    'rtcc.sensors.*.>'
    """
    if not topic:
        raise ValueError("empty MQTT topic")
    if "." in topic or " " in topic:
        raise ValueError(f"MQTT topic {topic!r} contains '.' or ' ', which nats-server 2.9 does not accept")
    out: list[str] = []
    end = len(topic) - 1
    for i, ch in enumerate(topic):
        if ch == "/":
            if i == 0 or out[-1] == ".":
                out.append("/.")
            elif i == end or topic[i + 1] == "/":
                out.append("./")
            else:
                out.append(".")
        elif ch == "+":
            out.append("*")
        elif ch == "#":
            out.append(">")
        else:
            out.append(ch)
    return "".join(out)


def durable_name(group: str, subject: str) -> str:
    """The JetStream durable consumer name for a queue group on a subject.

    Durable names may not contain ``.``, ``*``, ``>`` or whitespace, so every
    character outside ``[A-Za-z0-9_-]`` in ``group`` becomes ``_``; a short
    hash of the filter subject is appended so that one group can subscribe to
    several subjects (one consumer each) without the names colliding.

    Parameters
    ----------
    group : str
        The queue group.
    subject : str
        The subscription's subject filter.

    Returns
    -------
    str
        E.g. ``workers-1a2b3c4d``.
    """
    base = _NAME_BAD_CHARS.sub("_", group)[:48]
    digest = hashlib.sha256(subject.encode()).hexdigest()[:8]
    return f"{base}-{digest}"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and error messages).

    >>> redact_url("nats://rtcc:s3cret@nats.example:4222")
    'nats://rtcc:***@nats.example:4222'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    userinfo = f"{name}:***" if ":" in user else "***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def _check_subject(subject: str, *, wildcards: bool) -> None:
    tokens = subject.split(".")
    bad = not subject or any(c in subject for c in " \t\r\n") or "" in tokens
    if not bad and not wildcards:
        bad = any(c in subject for c in "*>")
    if not bad and wildcards:
        bad = any(
            ("*" in t and t != "*") or (">" in t and (t != ">" or i != len(tokens) - 1))
            for i, t in enumerate(tokens)
        )
    if bad:
        raise ValueError(f"invalid subject {subject!r}")
