"""TOTP multi-factor authentication (RFC 6238, 30-second steps, 6 digits).

Enrolment is two steps: :func:`begin_enrolment` stores a fresh secret and
returns it with an ``otpauth://`` URI for an authenticator app (shown once as
a QR code), then :func:`confirm_enrolment` turns MFA on once the person proves
the app works by typing a current code. Until then the secret is stored but
not required at login.

Codes are accepted one step either side of now (``valid_window=1``) to allow
for clock drift. At login a code is accepted once (RFC 6238 section 5.2):
:func:`accept_login_code` keeps the time step of the last accepted code in
``users.totp_last_step`` and refuses that step and any earlier one.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

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


def matching_step(secret: str, code: str | None, *, now: datetime | None = None) -> int | None:
    """The time step (Unix time // 30) whose code ``code`` is, within one step of now, or ``None``."""
    clean = _clean(code)
    if clean is None or not secret:
        return None
    at = now if now is not None else datetime.now(UTC)
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(at)
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        # Constant-time comparison, as pyotp's own verify does.
        if hmac.compare_digest(clean, str(totp.generate_otp(step))):
            return step
    return None


def verify_totp(secret: str, code: str | None, *, now: datetime | None = None) -> bool:
    """Whether ``code`` is a current TOTP code for ``secret`` (one step of drift allowed)."""
    return matching_step(secret, code, now=now) is not None


class CodeCheck(StrEnum):
    """How a login's TOTP code fared in :func:`accept_login_code`."""

    ok = "ok"
    invalid = "invalid"
    reused = "reused"


def accept_login_code(user: User, code: str | None, *, now: datetime | None = None) -> CodeCheck:
    """Check a login's code and, when it is good, remember its step so it works only once.

    A code whose step is the last accepted one, or earlier, is ``reused``:
    someone who saw it (over a shoulder, in a log, on the wire) cannot sign in
    with it again while it is still current. The caller must hold the user's
    row locked on PostgreSQL (:func:`rtcc.oversight.accounts.authenticate`
    does) so two parallel logins cannot both spend the same code.
    """
    step = matching_step(user.totp_secret or "", code, now=now)
    if step is None:
        return CodeCheck.invalid
    if user.totp_last_step is not None and step <= user.totp_last_step:
        return CodeCheck.reused
    user.totp_last_step = step
    return CodeCheck.ok


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
    user.totp_last_step = None  # steps belong to the old secret
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
    user.totp_last_step = None
    session.flush()
