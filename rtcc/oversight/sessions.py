"""Signed-in sessions: opaque random tokens, only their SHA-256 stored.

A token is ``secrets.token_urlsafe(32)`` (256 bits); the ``sessions`` table
keeps ``sha256(token)`` so a copy of the database does not let anyone sign in.
Sessions end after ``idle_minutes`` without use, at their absolute end
(``expires_at``, set at sign-in from ``security.session_max_hours``), when
revoked, when their user is disabled, or, for a session opened without a TOTP
code (``mfa_verified`` false), once MFA is required of its user: MFA switched
on for everyone, or the user enrolled (from another session). The person then
signs in again, with a code or into enrolment.

:func:`resolve_session` writes (it touches ``last_seen_at`` at most every
:data:`TOUCH_INTERVAL`, and marks idle sessions revoked), so async callers run
it with :meth:`rtcc.store.db.Store.write` on SQLite.

A session created with ``mfa_pending=True`` belongs to someone who must still
enrol in MFA; the API lets such a session reach only the enrolment routes
until :func:`complete_mfa`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rtcc.store.tables import SystemSetting, User, UserSession

MFA_REQUIRED_KEY = "mfa_required"
"""The system setting of the admin switch that requires MFA of everyone."""

DEFAULT_MAX_AGE = timedelta(hours=12)
"""Absolute lifetime of a session created without one (and of rows from before ``expires_at``)."""

TOUCH_INTERVAL = timedelta(seconds=30)
"""``last_seen_at`` is updated at most this often per session, to limit writes."""

MAX_TOKEN_LENGTH = 256


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(
    session: Session,
    user: User,
    *,
    mfa_pending: bool = False,
    mfa_verified: bool = False,
    client: str = "",
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
) -> str:
    """Start a session for ``user`` and return its token (shown once, never stored).

    ``mfa_verified`` records that the sign-in included a valid TOTP code;
    ``max_age`` is the session's absolute lifetime. ``client`` is a short
    description (e.g. user agent and address), cut to 256 characters.
    """
    at = now if now is not None else datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user.id,
            created_at=at,
            last_seen_at=at,
            mfa_pending=mfa_pending,
            mfa_verified=mfa_verified,
            expires_at=at + max_age,
            revoked=False,
            client=client[:256],
        )
    )
    session.flush()
    return token


def resolve_session(
    session: Session, token: str, *, now: datetime, idle_minutes: float = 30, mfa_default: bool = False
) -> tuple[UserSession, User] | None:
    """The live session and its user for ``token``, or ``None``.

    ``None`` when the token is unknown, revoked, idle for longer than
    ``idle_minutes``, past its absolute end, its user is disabled, or it was
    opened without MFA that its user now needs (see the module docstring);
    the session is then marked revoked. A live session's ``last_seen_at``
    moves to ``now`` when it is at least :data:`TOUCH_INTERVAL` old.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = session.get(UserSession, hash_token(token))
    if row is None or row.revoked:
        return None
    user = _live_user(session, row, now=now, idle_minutes=idle_minutes, mfa_default=mfa_default)
    if user is None:
        row.revoked = True
        session.flush()
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
        session.flush()
    return row, user


def session_alive(
    session: Session, token_hash: str, *, now: datetime, idle_minutes: float = 30, mfa_default: bool = False
) -> bool:
    """Whether the session is still live, without touching it (for long-lived connections).

    A WebSocket is not activity: an open page whose person made no call for
    ``idle_minutes`` is ended like any other idle session.
    """
    row = session.get(UserSession, token_hash)
    if row is None or row.revoked:
        return False
    return _live_user(session, row, now=now, idle_minutes=idle_minutes, mfa_default=mfa_default) is not None


def expires_at(row: UserSession) -> datetime:
    """The absolute end of a session (rows from before ``expires_at`` count from creation)."""
    return row.expires_at if row.expires_at is not None else row.created_at + DEFAULT_MAX_AGE


def _mfa_switch_on(session: Session, default: bool) -> bool:
    # Read here rather than via accounts.mfa_required: accounts imports this module. The admin
    # switch when set, else the settings file's `security.mfa_required` (``default``): a center
    # restarted with MFA required ends the sessions opened without it.
    row = session.get(SystemSetting, MFA_REQUIRED_KEY)
    return default if row is None else bool(row.value)


def _live_user(
    session: Session, row: UserSession, *, now: datetime, idle_minutes: float, mfa_default: bool = False
) -> User | None:
    """The user of a not-revoked session that is still good, or ``None`` when it must end."""
    if row.last_seen_at + timedelta(minutes=idle_minutes) < now or expires_at(row) <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    # A session that may only enrol (mfa_pending) is already limited; any other session without
    # a proven code ends once MFA is needed, so its holder must sign in again with MFA.
    needs_mfa = user.mfa_enabled or _mfa_switch_on(session, mfa_default)
    if not row.mfa_verified and not row.mfa_pending and needs_mfa:
        return None
    return user


def revoke_session(session: Session, token: str) -> bool:
    """End the session for ``token``; whether there was a live one."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    return revoke_session_hash(session, hash_token(token))


def revoke_session_hash(session: Session, token_hash: str) -> bool:
    """End the session stored as ``token_hash`` (admin screens list hashes, not tokens)."""
    row = session.get(UserSession, token_hash)
    if row is None or row.revoked:
        return False
    row.revoked = True
    session.flush()
    return True


def revoke_all_for_user(session: Session, user_id: int, *, except_token_hash: str | None = None) -> int:
    """End every live session of ``user_id`` (but ``except_token_hash``); how many ended."""
    stmt = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked.is_(False))
    if except_token_hash is not None:
        stmt = stmt.where(UserSession.token_hash != except_token_hash)
    result = session.execute(stmt.values(revoked=True).execution_options(synchronize_session="fetch"))
    return int(getattr(result, "rowcount", 0) or 0)


def complete_mfa(session_row: UserSession) -> None:
    """Mark a session's MFA step done (after enrolment or a verified code)."""
    session_row.mfa_pending = False
    session_row.mfa_verified = True


def list_sessions(session: Session, user_id: int, *, live_only: bool = True) -> list[UserSession]:
    """The sessions of ``user_id``, newest first (live ones only by default)."""
    stmt = select(UserSession).where(UserSession.user_id == user_id)
    if live_only:
        stmt = stmt.where(UserSession.revoked.is_(False))
    return list(session.scalars(stmt.order_by(UserSession.created_at.desc())))
