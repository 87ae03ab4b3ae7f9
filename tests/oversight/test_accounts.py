from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from rtcc.errors import AuthError, Conflict, LockedOut, NotFound, ValidationFailed
from rtcc.oversight import passwords
from rtcc.oversight.accounts import (
    AuthOutcome,
    AuthReason,
    authenticate,
    count_users,
    create_user,
    disable,
    get_system_setting,
    get_user,
    list_users,
    mfa_required,
    set_password,
    set_role,
    set_system_setting,
    unlock,
)
from rtcc.oversight.mfa import begin_enrolment, confirm_enrolment, current_code, disable_mfa
from rtcc.oversight.sessions import create_session, resolve_session
from rtcc.roles import Role
from rtcc.store.db import Store
from rtcc.store.tables import User

PW = "a sturdy passphrase"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_user(store: Store, name: str = "dana", role: Role = Role.analyst) -> User:
    return store.run(lambda s: create_user(s, name, PW, role, "Dana Analyst"))


def login(
    store: Store, name: str, password: str, code: str | None = None, *, now: datetime = T0
) -> AuthOutcome:
    """Log in the way the API does: the transaction commits, then the caller raises."""
    return store.run(lambda s: authenticate(s, name, password, code, now=now))


def reload(store: Store, name: str) -> User:
    user = store.run(lambda s: get_user(s, name))
    assert user is not None
    return user


# --- accounts ---------------------------------------------------------------------


def test_create_and_read(store: Store) -> None:
    user = make_user(store, "Dana")
    assert user.id is not None
    assert user.username == "dana"
    assert user.role == "analyst"
    assert user.display_name == "Dana Analyst"
    assert user.password_hash.startswith("$argon2id$")
    assert PW not in user.password_hash
    assert reload(store, "DANA").id == user.id
    store.run(lambda s: create_user(s, "ade", PW, "officer"))
    assert [u.username for u in store.run(list_users)] == ["ade", "dana"]
    assert store.run(count_users) == 2


def test_create_refuses(store: Store) -> None:
    make_user(store)
    with pytest.raises(Conflict):
        store.run(lambda s: create_user(s, "DANA", PW, Role.officer))
    with pytest.raises(ValidationFailed, match="public"):
        store.run(lambda s: create_user(s, "pat", PW, Role.public))
    with pytest.raises(ValidationFailed, match="unknown role"):
        store.run(lambda s: create_user(s, "pat", PW, "chief"))
    for bad in ("", "has space", "-dash", "x" * 65, "semi;colon"):
        with pytest.raises(ValidationFailed, match="username"):
            store.run(lambda s, bad=bad: create_user(s, bad, PW, Role.officer))  # type: ignore[misc]
    with pytest.raises(ValidationFailed, match="at least 12"):
        store.run(lambda s: create_user(s, "pat", "short", Role.officer))
    assert store.run(count_users) == 1


def test_set_role_disable_and_password(store: Store) -> None:
    make_user(store)
    assert store.run(lambda s: set_role(s, "dana", Role.supervisor)).role == "supervisor"
    with pytest.raises(ValidationFailed):
        store.run(lambda s: set_role(s, "dana", Role.public))
    with pytest.raises(NotFound):
        store.run(lambda s: set_role(s, "nobody", Role.officer))

    store.run(lambda s: set_password(s, "dana", "another good passphrase"))
    assert not login(store, "dana", PW).ok
    assert login(store, "dana", "another good passphrase").ok
    with pytest.raises(ValidationFailed):
        store.run(lambda s: set_password(s, "dana", "password1234"))

    store.run(lambda s: disable(s, "dana"))
    out = login(store, "dana", "another good passphrase")
    assert not out.ok and out.reason is AuthReason.disabled
    assert "disabled" in out.message
    with pytest.raises(AuthError):
        out.raise_for_failure()
    wrong = login(store, "dana", "not the password")
    assert wrong.reason is AuthReason.disabled and "disabled" not in wrong.message
    assert [u.username for u in store.run(lambda s: list_users(s, include_disabled=False))] == []


def test_successful_login(store: Store) -> None:
    make_user(store)
    out = login(store, "Dana", PW)
    assert out.ok and out.reason is AuthReason.ok
    assert not out.mfa_enrolment_required
    assert out.raise_for_failure().username == "dana"
    assert out.error() is None


def test_unknown_user(store: Store) -> None:
    out = login(store, "ghost", PW)
    assert not out.ok and out.reason is AuthReason.unknown_user and out.user is None
    with pytest.raises(AuthError) as err:
        out.raise_for_failure()
    assert not isinstance(err.value, LockedOut)
    # Same message as a wrong password: no hint that the name does not exist.
    make_user(store)
    assert login(store, "dana", "wrong password!").message == out.message
    assert login(store, "bad name!", PW).reason is AuthReason.unknown_user


def test_unknown_user_still_verifies_a_hash(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = passwords.verify_password

    def counting(h: str, pw: str) -> bool:
        calls.append(h)
        return real(h, pw)

    monkeypatch.setattr(passwords, "verify_password", counting)
    login(store, "ghost", PW)
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


# --- lockout --------------------------------------------------------------------------


def test_lockout_after_five_failures_and_unlock_after_ten_minutes(store: Store) -> None:
    make_user(store)
    for i in range(1, 5):
        out = login(store, "dana", "wrong password!", now=T0 + timedelta(seconds=i))
        assert out.reason is AuthReason.bad_password and out.locked_until is None
        # The failure is committed even though the caller raises afterwards.
        assert reload(store, "dana").failed_logins == i

    fifth = login(store, "dana", "wrong password!", now=T0 + timedelta(seconds=5))
    assert not fifth.ok
    assert fifth.locked_until == T0 + timedelta(seconds=5, minutes=10)
    assert "locked until 2025-03-01 12:10:05 UTC" in fifth.message
    user = reload(store, "dana")
    assert user.locked_until == T0 + timedelta(seconds=5, minutes=10)
    assert user.failed_logins == 0

    # While locked, even the right password is refused, with the unlock time.
    locked = login(store, "dana", PW, now=T0 + timedelta(minutes=5))
    assert locked.reason is AuthReason.locked
    with pytest.raises(LockedOut) as err:
        locked.raise_for_failure()
    assert "2025-03-01 12:10:05 UTC" in err.value.message
    assert err.value.status == 423
    assert reload(store, "dana").failed_logins == 0  # attempts while locked are not counted

    # Just before the end of the lock: still locked. After it: the right password works.
    assert login(store, "dana", PW, now=T0 + timedelta(minutes=10, seconds=4)).reason is (AuthReason.locked)
    ok = login(store, "dana", PW, now=T0 + timedelta(minutes=10, seconds=6))
    assert ok.ok
    user = reload(store, "dana")
    assert user.locked_until is None and user.failed_logins == 0


def test_lock_expires_and_counting_starts_again(store: Store) -> None:
    make_user(store)
    for i in range(5):
        login(store, "dana", "wrong password!", now=T0 + timedelta(seconds=i))
    later = T0 + timedelta(minutes=11)
    out = login(store, "dana", "wrong password!", now=later)
    assert out.reason is AuthReason.bad_password and out.locked_until is None
    user = reload(store, "dana")
    assert user.failed_logins == 1 and user.locked_until is None


def test_success_resets_counter(store: Store) -> None:
    make_user(store)
    for _ in range(4):
        login(store, "dana", "wrong password!")
    assert reload(store, "dana").failed_logins == 4
    assert login(store, "dana", PW).ok
    assert reload(store, "dana").failed_logins == 0
    for _ in range(4):
        login(store, "dana", "wrong password!")
    assert reload(store, "dana").locked_until is None  # 4 more, not 8


def test_custom_lockout_settings_and_admin_unlock(store: Store) -> None:
    make_user(store)
    for _ in range(2):
        out = store.run(
            lambda s: authenticate(
                s, "dana", "nope nope nope", None, now=T0, lockout_attempts=2, lockout_minutes=1
            )
        )
    assert out.locked_until == T0 + timedelta(minutes=1)
    store.run(lambda s: unlock(s, "dana"))
    assert login(store, "dana", PW, now=T0).ok


def test_login_rehashes_old_parameters(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    old = make_user(store).password_hash
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher())
    assert login(store, "dana", PW).ok
    new = reload(store, "dana").password_hash
    assert new != old and not passwords.needs_rehash(new)
    assert login(store, "dana", PW).ok


# --- MFA ----------------------------------------------------------------------------


def enrol(store: Store, name: str = "dana") -> str:
    def go(s: Session) -> str:
        user = get_user(s, name)
        assert user is not None
        enrolment = begin_enrolment(s, user)
        assert enrolment.uri.startswith("otpauth://totp/")
        assert "issuer=rtcc" in enrolment.uri and name in enrolment.uri
        right = current_code(enrolment.secret, now=T0)
        with pytest.raises(ValidationFailed):
            confirm_enrolment(s, user, "000000" if right != "000000" else "111111", now=T0)
        assert not user.mfa_enabled
        confirm_enrolment(s, user, right, now=T0)
        assert user.mfa_enabled
        return enrolment.secret

    return store.run(go)


def test_mfa_enrolment_and_login_needs_a_code(store: Store) -> None:
    make_user(store)
    secret = enrol(store)
    user = reload(store, "dana")
    assert user.mfa_enabled and user.totp_secret == secret

    missing = login(store, "dana", PW, None)
    assert missing.reason is AuthReason.mfa_code_required
    err = missing.error()
    assert isinstance(err, AuthError) and err.details["mfa_required"] is True
    assert reload(store, "dana").failed_logins == 1

    code = current_code(secret, now=T0)
    assert login(store, "dana", PW, code).ok
    assert reload(store, "dana").failed_logins == 0
    # One 30-second step of drift either way is accepted, two are not. (Each code works once, so
    # every later login is a minute on.)
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
    assert login(store, "dana", PW, current_code(secret, now=t1 - timedelta(seconds=30)), now=t1).ok
    spaced = current_code(secret, now=t2)
    assert login(store, "dana", PW, f"{spaced[:3]} {spaced[3:]}", now=t2).ok
    stale = current_code(secret, now=t3 - timedelta(seconds=90))
    if stale not in {current_code(secret, now=t3 + timedelta(seconds=30 * k)) for k in (-1, 0, 1)}:
        assert login(store, "dana", PW, stale, now=t3).reason is AuthReason.bad_mfa_code
    # A right code with a wrong password is still a wrong password.
    assert login(store, "dana", "wrong password!", code).reason is AuthReason.bad_password


def test_wrong_mfa_codes_count_towards_lockout(store: Store) -> None:
    make_user(store)
    secret = enrol(store)
    right = current_code(secret, now=T0)
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(4):
        assert login(store, "dana", PW, wrong).reason is AuthReason.bad_mfa_code
    assert login(store, "dana", PW, "not-a-code").reason is AuthReason.bad_mfa_code
    assert reload(store, "dana").locked_until == T0 + timedelta(minutes=10)
    assert login(store, "dana", PW, right).reason is AuthReason.locked


def test_enrolment_conflicts_and_admin_disable(store: Store) -> None:
    make_user(store)
    enrol(store)

    def again(s: Session) -> None:
        user = get_user(s, "dana")
        assert user is not None
        begin_enrolment(s, user)

    with pytest.raises(Conflict):
        store.run(again)

    def off(s: Session) -> None:
        user = get_user(s, "dana")
        assert user is not None
        disable_mfa(s, user)

    store.run(off)
    user = reload(store, "dana")
    assert not user.mfa_enabled and user.totp_secret is None
    assert login(store, "dana", PW).ok

    def confirm_without_begin(s: Session) -> None:
        u = get_user(s, "dana")
        assert u is not None
        confirm_enrolment(s, u, "123456")

    with pytest.raises(Conflict):
        store.run(confirm_without_begin)


def test_mfa_required_switch(store: Store) -> None:
    make_user(store)
    assert store.run(lambda s: mfa_required(s, False)) is False
    assert store.run(lambda s: mfa_required(s, True)) is True
    assert login(store, "dana", PW).mfa_enrolment_required is False

    store.run(lambda s: set_system_setting(s, "mfa_required", True))
    assert store.run(lambda s: get_system_setting(s, "mfa_required")) is True
    assert store.run(lambda s: mfa_required(s, False)) is True

    out = login(store, "dana", PW)
    assert out.ok and out.mfa_enrolment_required
    # The API then creates a session that may only enrol.
    token = store.run(
        lambda s: create_session(s, out.raise_for_failure(), mfa_pending=out.mfa_enrolment_required)
    )
    resolved = store.run(lambda s: resolve_session(s, token, now=datetime.now(UTC)))
    assert resolved is not None and resolved[0].mfa_pending

    enrol(store)
    secret = reload(store, "dana").totp_secret
    assert secret is not None
    done = login(store, "dana", PW, current_code(secret, now=T0))
    assert done.ok and not done.mfa_enrolment_required

    store.run(lambda s: set_system_setting(s, "mfa_required", False))
    store.run(lambda s: create_user(s, "ade", PW, Role.officer))
    assert not login(store, "ade", PW).mfa_enrolment_required
    # The settings default applies only while the switch was never set.
    assert not store.run(
        lambda s: authenticate(s, "ade", PW, None, now=T0, mfa_required_default=True)
    ).mfa_enrolment_required


def test_parallel_guesses_lose_no_failures(store: Store) -> None:
    """Five wrong guesses at once lock the account: no counter increment is lost."""
    make_user(store)
    attempts = 5
    if store.is_postgres:
        # Separate connections at once; the user's row is locked per attempt.
        barrier = threading.Barrier(attempts)

        def guess(i: int) -> AuthOutcome:
            barrier.wait()
            return login(store, "dana", f"wrong password {i}")

        with ThreadPoolExecutor(attempts) as pool:
            outcomes = list(pool.map(guess, range(attempts)))
    else:
        # SQLite: the API sends logins through the single writer thread.
        async def main() -> list[AuthOutcome]:
            return await asyncio.gather(
                *(
                    store.write(
                        lambda s, i=i: authenticate(s, "dana", f"wrong password {i}", None, now=T0)  # type: ignore[misc]
                    )
                    for i in range(attempts)
                )
            )

        outcomes = asyncio.run(main())
    assert all(not o.ok for o in outcomes)
    assert sum(o.locked_until is not None for o in outcomes) == 1
    user = reload(store, "dana")
    assert user.locked_until == T0 + timedelta(minutes=10) and user.failed_logins == 0
