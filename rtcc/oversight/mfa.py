"""TOTP multi-factor authentication (RFC 6238, 30-second steps, 6 digits).

Enrolment is two steps: :func:`begin_enrolment` stores a fresh secret and
returns it with an ``otpauth://`` URI for an authenticator app (shown once as
a QR code), then :func:`confirm_enrolment` turns MFA on once the person proves
the app works by typing a current code. Until then the secret is stored but
not required at login.

Codes are accepted one step either side of now (``valid_window=1``) to allow
for clock drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from sqlalchemy.orm import Session

from rtcc.errors import Conflict, ValidationFailed
from rtcc.store.tables import User

ISSUER = "rtcc"
VALID_WINDOW = 1


@dataclass(frozen=True)
class MfaEnrolment:
    """What an authenticator app needs: the base32 secret and its provisioning URI."""

    secret: str
    uri: str


def _clean(code: str | None) -> str | None:
    if code is None:
        return None
    code = code.replace(" ", "").replace("-", "").strip()
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    return code


def verify_totp(secret: str, code: str | None, *, now: datetime | None = None) -> bool:
    """Whether ``code`` is a current TOTP code for ``secret`` (one step of drift allowed)."""
    clean = _clean(code)
    if clean is None or not secret:
        return False
    at = now if now is not None else datetime.now(UTC)
    return bool(pyotp.TOTP(secret).verify(clean, for_time=at, valid_window=VALID_WINDOW))


def current_code(secret: str, *, now: datetime | None = None) -> str:
    """The code an authenticator app shows for ``secret`` at ``now`` (tests, CLI)."""
    at = now if now is not None else datetime.now(UTC)
    return str(pyotp.TOTP(secret).at(at))


def begin_enrolment(session: Session, user: User) -> MfaEnrolment:
    """Store a new TOTP secret for ``user`` and return it with its ``otpauth://`` URI.

    Raises
    ------
    Conflict
        When MFA is already on (an admin must :func:`disable_mfa` first, e.g.
        when the phone is lost).
    """
    if user.mfa_enabled:
        raise Conflict("multi-factor authentication is already enabled for this account")
    secret = pyotp.random_base32()
    user.totp_secret = secret
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return MfaEnrolment(secret=secret, uri=str(uri))


def confirm_enrolment(session: Session, user: User, code: str, *, now: datetime | None = None) -> None:
    """Turn MFA on for ``user`` once ``code`` proves the authenticator app works.

    Raises
    ------
    Conflict
        When no enrolment was begun or MFA is already on.
    ValidationFailed
        When the code is not a current code for the secret.
    """
    if user.mfa_enabled:
        raise Conflict("multi-factor authentication is already enabled for this account")
    if not user.totp_secret:
        raise Conflict("no MFA enrolment in progress; begin enrolment first")
    if not verify_totp(user.totp_secret, code, now=now):
        raise ValidationFailed(
            "that code is not valid; check the authenticator app's clock and try the current code"
        )
    user.mfa_enabled = True
    session.flush()


def disable_mfa(session: Session, user: User) -> None:
    """Turn MFA off and forget the secret (an admin action, e.g. for a lost phone)."""
    user.mfa_enabled = False
    user.totp_secret = None
    session.flush()
