"""Telling camera owners things: verification links, manage links, footage requests.

:class:`Notifier` is the seam: :class:`SmtpNotifier` sends email with
:mod:`smtplib` (in a thread, so the event loop never blocks);
:class:`LogNotifier` logs the message and keeps it (the demo, and a center
without mail). :func:`notifier_from_settings` picks one from
``cameras.notifier``.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from rtcc.errors import Unavailable
from rtcc.settings import CamerasSettings

log = logging.getLogger(__name__)

SEND_FAILED = "the center could not send the e-mail; try again later"
"""What a caller is told when a mail cannot be sent (the details are logged, not shown)."""


@dataclass(frozen=True)
class Message:
    """One notification to a camera owner."""

    to_email: str
    subject: str
    body: str


class Notifier(Protocol):
    """Sends a :class:`Message`; raises :class:`rtcc.errors.Unavailable` when it cannot."""

    async def send(self, message: Message) -> None: ...


class LogNotifier:
    """Logs each message and keeps the most recent ones in :attr:`sent` (demo, no mail)."""

    def __init__(self, keep: int = 100) -> None:
        self.sent: list[Message] = []
        self._keep = keep

    async def send(self, message: Message) -> None:
        log.info("notification to %s: %s\n%s", message.to_email, message.subject, message.body)
        self.sent.append(message)
        del self.sent[: -self._keep]


class SmtpNotifier:
    """Email through an SMTP server.

    Parameters
    ----------
    host, port : str, int
        The SMTP server.
    sender : str
        The ``From`` address.
    starttls : bool
        Upgrade the connection with STARTTLS before sending.
    timeout_s : float
        Connection and command timeout, seconds.
    """

    def __init__(
        self, host: str, port: int, sender: str, *, starttls: bool = False, timeout_s: float = 10.0
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls = starttls
        self.timeout_s = timeout_s

    def _send_sync(self, message: Message) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = message.to_email
        msg["Subject"] = message.subject
        msg.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            smtp.send_message(msg)

    async def send(self, message: Message) -> None:
        """Send ``message``; raises :class:`~rtcc.errors.Unavailable` when it cannot.

        The error the caller (often the public registration page) sees says
        only that the mail could not be sent: the mail server's address and
        the server's answer are internal, so they go to the log, once, as a
        warning naming the settings to check.
        """
        try:
            await asyncio.to_thread(self._send_sync, message)
        except (OSError, smtplib.SMTPException, ValueError) as exc:  # ValueError: a header email refuses
            log.warning(
                "could not send email through %s:%s (%s); check cameras.smtp_host / cameras.smtp_port",
                self.host,
                self.port,
                exc,
            )
            raise Unavailable(SEND_FAILED) from exc


def notifier_from_settings(settings: CamerasSettings) -> Notifier:
    """The notifier ``cameras.notifier`` names."""
    if settings.notifier == "smtp":
        return SmtpNotifier(
            settings.smtp_host, settings.smtp_port, settings.smtp_from, starttls=settings.smtp_starttls
        )
    return LogNotifier()
