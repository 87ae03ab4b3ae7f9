"""Audit findings on sign-in: no account enumeration, one use per TOTP code, sessions that end
when MFA becomes required or at their absolute lifetime, and an admin that always remains."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.errors import AuthError, Conflict, LockedOut
from rtcc.oversight.accounts import (
    INVALID_CREDENTIALS,
    AuthOutcome,
    AuthReason,
    authenticate,
    create_user,
    disable,
    get_user,
    set_role,
    set_system_setting,
    unlock,
)
from rtcc.oversight.mfa import begin_enrolment, confirm_enrolment, current_code
from rtcc.oversight.sessions import complete_mfa, create_session, hash_token, resolve_session, session_alive
from rtcc.roles import Role
from rtcc.store.db import Store
from rtcc.store.tables import LoginFailure, User, UserSession

PW = "a sturdy passphrase"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_user(store: Store, name: str, role: Role = Role.analyst) -> User:
    return store.run(lambda s: create_user(s, name, PW, role))


def login(
    store: Store, name: str, password: str, code: str | None = None, *, now: datetime = T0
) -> AuthOutcome:
    return store.run(lambda s: authenticate(s, name, password, code, now=now))


def client_view(outcome: AuthOutcome) -> tuple[type, int, str, dict[str, object]]:
    """What the API sends for a failed attempt: exception type, status, message, details."""
    err = outcome.error()
    assert err is not None
    return type(err), err.status, err.message, err.details


def enrol(store: Store, name: str) -> str:
    def go(s: Session) -> str:
        user = get_user(s, name)
        assert user is not None
        secret = begin_enrolment(s, user).secret
        confirm_enrolment(s, user, current_code(secret, now=T0), now=T0)
        return secret

    return store.run(go)


# --- finding 1: the client cannot tell unknown names from real ones --------------------------


def test_unknown_name_and_wrong_password_answer_alike_through_the_lockout(store: Store) -> None:
    make_user(store, "dana")
    for i in range(7):
        at = T0 + timedelta(seconds=i)
        real = login(store, "dana", "wrong password!", now=at)
        ghost = login(store, "ghost", "wrong password!", now=at)
        # The audit log keeps the precise reason; the client sees the same answer.
        assert {real.reason, ghost.reason} <= {
            AuthReason.bad_password,
            AuthReason.unknown_user,
            AuthReason.locked,
        }
        assert client_view(real) == client_view(ghost)
        if i < 4:
            assert client_view(ghost)[3] == {"reason": INVALID_CREDENTIALS}
    # The fifth failure locked both names; the sixth and seventh are 423 for both.
    view = client_view(login(store, "ghost", PW, now=T0 + timedelta(minutes=1)))
    assert view[0] is LockedOut and view[1] == 423 and "ask an administrator" in view[2]
    assert view == client_view(login(store, "dana", PW, now=T0 + timedelta(minutes=1)))
    # Both locks lift at the same time.
    later = T0 + timedelta(minutes=11)
    assert login(store, "dana", PW, now=later).ok
    assert client_view(login(store, "ghost", "x" * 12, now=later))[3] == {"reason": INVALID_CREDENTIALS}


def test_disabled_account_with_wrong_password_looks_like_any_other_name(store: Store) -> None:
    make_user(store, "dana")
    store.run(lambda s: disable(s, "dana"))
    wrong = login(store, "dana", "wrong password!")
    assert wrong.reason is AuthReason.disabled  # for the audit log
    assert client_view(wrong) == client_view(login(store, "ghost", "wrong password!"))
    # ... and locks like one.
    for i in range(4):
        login(store, "dana", "wrong password!", now=T0 + timedelta(seconds=i + 1))
    assert isinstance(login(store, "dana", PW, now=T0 + timedelta(seconds=9)).error(), LockedOut)
    # Only someone with the password learns that the account is disabled.
    right = login(store, "dana", PW, now=T0 + timedelta(minutes=20))
    assert right.error() is not None and right.error().details == {"reason": "disabled"}  # type: ignore[union-attr]


def test_new_account_does_not_inherit_failures_of_its_name(store: Store) -> None:
    for i in range(5):
        login(store, "newbie", "wrong password!", now=T0 + timedelta(seconds=i))
    assert store.run(lambda s: s.get(LoginFailure, "newbie")) is not None
    make_user(store, "newbie")
    assert store.run(lambda s: s.get(LoginFailure, "newbie")) is None
    assert login(store, "newbie", PW, now=T0 + timedelta(seconds=6)).ok


# --- finding 2b: a TOTP code works once ------------------------------------------------------


def test_same_totp_code_is_refused_the_second_time(store: Store) -> None:
    make_user(store, "dana")
    secret = enrol(store, "dana")
    code = current_code(secret, now=T0)
    assert login(store, "dana", PW, code, now=T0).ok
    again = login(store, "dana", PW, code, now=T0 + timedelta(seconds=5))
    assert again.reason is AuthReason.reused_mfa_code and not again.ok
    err = again.error()
    assert isinstance(err, AuthError) and err.details == {"reason": "reused_mfa_code", "mfa_required": True}
    # A code from before the last accepted one is refused as well (still inside the drift window).
    earlier = current_code(secret, now=T0 - timedelta(seconds=30))
    if earlier != code:
        assert login(store, "dana", PW, earlier, now=T0 + timedelta(seconds=5)).reason is (
            AuthReason.reused_mfa_code
        )
    # The next code works.
    nxt = T0 + timedelta(seconds=30)
    assert login(store, "dana", PW, current_code(secret, now=nxt), now=nxt).ok
    assert store.run(lambda s: get_user(s, "dana")).totp_last_step is not None  # type: ignore[union-attr]


# --- finding 2a: sessions opened without MFA, absolute lifetime --------------------------------


def _session(store: Store, user: User, **kw: object) -> str:
    return store.run(lambda s: create_session(s, user, now=T0, **kw))  # type: ignore[arg-type]


def _alive(store: Store, token: str, at: datetime) -> bool:
    return store.run(lambda s: resolve_session(s, token, now=at, idle_minutes=10_000)) is not None


def test_sessions_without_mfa_end_when_the_switch_requires_it(store: Store) -> None:
    user = make_user(store, "dana")
    plain = _session(store, user)
    proven = _session(store, user, mfa_verified=True)
    pending = _session(store, user, mfa_pending=True)
    at = T0 + timedelta(minutes=1)
    assert _alive(store, plain, at)
    store.run(lambda s: set_system_setting(s, "mfa_required", True))
    assert not store.run(lambda s: session_alive(s, hash_token(plain), now=at, idle_minutes=10_000))
    assert not _alive(store, plain, at)
    assert store.run(lambda s: s.get(UserSession, hash_token(plain))).revoked  # type: ignore[union-attr]
    assert _alive(store, proven, at)
    assert _alive(store, pending, at)  # already limited to enrolment
    # Switching it off again does not bring the ended session back.
    store.run(lambda s: set_system_setting(s, "mfa_required", False))
    assert not _alive(store, plain, at)


def test_sessions_without_mfa_end_when_the_settings_file_requires_it(store: Store) -> None:
    """`security.mfa_required = true` in the settings file, center restarted: same as the switch."""
    user = make_user(store, "erin")
    plain = _session(store, user)
    proven = _session(store, user, mfa_verified=True)
    at = T0 + timedelta(minutes=1)

    def alive(token: str, required: bool) -> bool:
        return (
            store.run(lambda s: resolve_session(s, token, now=at, idle_minutes=10_000, mfa_default=required))
            is not None
        )

    assert store.run(lambda s: session_alive(s, hash_token(plain), now=at, idle_minutes=10_000))
    assert not store.run(
        lambda s: session_alive(s, hash_token(plain), now=at, idle_minutes=10_000, mfa_default=True)
    )
    assert not alive(plain, True)
    assert alive(proven, True)
    # the admin switch, once set, decides over the file's default
    store.run(lambda s: set_system_setting(s, "mfa_required", False))
    assert alive(_session(store, user), True)


def test_sessions_without_mfa_end_when_their_user_enrols(store: Store) -> None:
    user = make_user(store, "dana")
    other_device = _session(store, user)
    this_device = _session(store, user)

    def enrol_here(s: Session) -> None:
        u = get_user(s, "dana")
        assert u is not None
        confirm_enrolment(s, u, current_code(begin_enrolment(s, u).secret, now=T0), now=T0)
        row = s.get(UserSession, hash_token(this_device))
        assert row is not None
        complete_mfa(row)

    store.run(enrol_here)
    at = T0 + timedelta(minutes=1)
    assert _alive(store, this_device, at)
    assert not _alive(store, other_device, at)


def test_absolute_session_lifetime(store: Store) -> None:
    user = make_user(store, "dana")
    token = _session(store, user, max_age=timedelta(hours=2))
    # Kept busy all along (no idle end), it still ends two hours after sign-in.
    for minutes in range(0, 120, 20):
        assert _alive(store, token, T0 + timedelta(minutes=minutes))
    assert not _alive(store, token, T0 + timedelta(hours=2))
    default = _session(store, user)
    assert _alive(store, default, T0 + timedelta(hours=11, minutes=59))
    assert not _alive(store, default, T0 + timedelta(hours=12))


def test_session_rows_from_before_expires_at_count_from_creation(store: Store) -> None:
    user = make_user(store, "dana")
    token = _session(store, user)

    def clear(s: Session) -> None:
        row = s.get(UserSession, hash_token(token))
        assert row is not None
        row.expires_at = None

    store.run(clear)
    assert _alive(store, token, T0 + timedelta(hours=11))
    assert not _alive(store, token, T0 + timedelta(hours=12, seconds=1))


# --- finding 3: unlock, and the last admin -----------------------------------------------------


def test_unlock_lifts_a_lock(store: Store) -> None:
    make_user(store, "dana")
    for i in range(5):
        login(store, "dana", "wrong password!", now=T0 + timedelta(seconds=i))
    assert login(store, "dana", PW, now=T0 + timedelta(minutes=1)).reason is AuthReason.locked
    store.run(lambda s: unlock(s, "dana"))
    assert login(store, "dana", PW, now=T0 + timedelta(minutes=1)).ok


def test_last_enabled_admin_cannot_be_disabled_or_demoted(store: Store) -> None:
    make_user(store, "root", Role.admin)
    make_user(store, "dana")
    with pytest.raises(Conflict, match="last enabled admin"):
        store.run(lambda s: disable(s, "root"))
    with pytest.raises(Conflict, match="last enabled admin"):
        store.run(lambda s: set_role(s, "root", Role.analyst))
    root = store.run(lambda s: get_user(s, "root"))
    assert root is not None and root.role == "admin" and not root.disabled
    # A disabled admin does not count.
    make_user(store, "spare", Role.admin)
    store.run(lambda s: disable(s, "spare"))
    with pytest.raises(Conflict):
        store.run(lambda s: disable(s, "root"))
    # With a second enabled admin, either may go.
    store.run(lambda s: disable(s, "spare", disabled=False))
    store.run(lambda s: set_role(s, "root", Role.supervisor))
    with pytest.raises(Conflict):
        store.run(lambda s: disable(s, "spare"))
    admins = store.run(
        lambda s: list(s.scalars(select(User.username).where(User.role == "admin", User.disabled.is_(False))))
    )
    assert admins == ["spare"]


def test_parallel_guesses_at_an_unknown_name_lose_no_failures(store: Store) -> None:
    """Five wrong guesses at once at a name without an account lock it, like a real account."""
    attempts = 5
    if store.is_postgres:
        # Separate connections at once: the first inserts must not collide on the name.
        barrier = threading.Barrier(attempts)

        def guess(i: int) -> AuthOutcome:
            barrier.wait()
            return login(store, "ghost", f"wrong password {i}")

        with ThreadPoolExecutor(attempts) as pool:
            outcomes = list(pool.map(guess, range(attempts)))
    else:

        async def main() -> list[AuthOutcome]:
            return await asyncio.gather(
                *(
                    store.write(
                        lambda s, i=i: authenticate(s, "ghost", f"wrong password {i}", None, now=T0)  # type: ignore[misc]
                    )
                    for i in range(attempts)
                )
            )

        outcomes = asyncio.run(main())
    assert all(o.error() is not None for o in outcomes)
    assert sum(o.locked_until is not None for o in outcomes) == 1
    assert isinstance(login(store, "ghost", PW).error(), LockedOut)
