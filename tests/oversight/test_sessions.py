from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rtcc.oversight.accounts import create_user, disable, enable, set_password
from rtcc.oversight.sessions import (
    complete_mfa,
    create_session,
    hash_token,
    list_sessions,
    resolve_session,
    revoke_all_for_user,
    revoke_session,
)
from rtcc.roles import Role
from rtcc.store.db import Store
from rtcc.store.tables import User, UserSession

PW = "a sturdy passphrase"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def setup_user(store: Store, name: str = "omar") -> User:
    return store.run(lambda s: create_user(s, name, PW, Role.officer))


def start(store: Store, user: User, *, at: datetime = T0, mfa_pending: bool = False) -> str:
    return store.run(lambda s: create_session(s, user, mfa_pending=mfa_pending, client="pytest", now=at))


def resolve(store: Store, token: str, at: datetime) -> tuple[UserSession, User] | None:
    return store.run(lambda s: resolve_session(s, token, now=at))


def row(store: Store, token: str) -> UserSession:
    r = store.run(lambda s: s.get(UserSession, hash_token(token)))
    assert r is not None
    return r


def test_token_is_opaque_and_only_its_hash_is_stored(store: Store) -> None:
    user = setup_user(store)
    token = start(store, user)
    assert len(token) >= 43
    assert start(store, user) != token
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM sessions")).all()
    assert len(stored) == 2
    assert all(token not in str(tuple(r)) for r in stored)
    assert row(store, token).token_hash == hash_token(token)


def test_resolve_returns_session_and_user(store: Store) -> None:
    user = setup_user(store)
    token = start(store, user)
    found = resolve(store, token, T0 + timedelta(minutes=1))
    assert found is not None
    sess, who = found
    assert who.id == user.id and who.username == "omar"
    assert sess.client == "pytest" and not sess.mfa_pending
    assert resolve(store, "not-a-token", T0) is None
    assert resolve(store, "", T0) is None
    assert resolve(store, "x" * 10_000, T0) is None


def test_idle_expiry_after_thirty_minutes(store: Store) -> None:
    user = setup_user(store)
    token = start(store, user)
    # Used every 20 minutes, it stays alive well past 30 minutes in total.
    for minutes in (20, 40, 60):
        assert resolve(store, token, T0 + timedelta(minutes=minutes)) is not None
    assert row(store, token).last_seen_at == T0 + timedelta(minutes=60)
    # Exactly 30 idle minutes is still fine; a moment more is not.
    assert resolve(store, token, T0 + timedelta(minutes=90)) is not None
    assert resolve(store, token, T0 + timedelta(minutes=120, microseconds=1)) is None
    assert row(store, token).revoked
    # Once expired it stays expired.
    assert resolve(store, token, T0 + timedelta(minutes=91)) is None


def test_custom_idle_minutes(store: Store) -> None:
    user = setup_user(store)
    token = start(store, user)
    assert (
        store.run(lambda s: resolve_session(s, token, now=T0 + timedelta(minutes=6), idle_minutes=5)) is None
    )


def test_touch_is_rate_limited(store: Store) -> None:
    user = setup_user(store)
    token = start(store, user)
    resolve(store, token, T0 + timedelta(seconds=10))
    assert row(store, token).last_seen_at == T0
    resolve(store, token, T0 + timedelta(seconds=31))
    assert row(store, token).last_seen_at == T0 + timedelta(seconds=31)


def test_revoke(store: Store) -> None:
    user = setup_user(store)
    a, b = start(store, user), start(store, user)
    assert store.run(lambda s: revoke_session(s, a)) is True
    assert store.run(lambda s: revoke_session(s, a)) is False
    assert store.run(lambda s: revoke_session(s, "unknown")) is False
    assert resolve(store, a, T0) is None
    assert resolve(store, b, T0) is not None
    assert len(store.run(lambda s: list_sessions(s, user.id))) == 1
    assert len(store.run(lambda s: list_sessions(s, user.id, live_only=False))) == 2


def test_revoke_all_for_user(store: Store) -> None:
    omar, lin = setup_user(store), setup_user(store, "lin")
    tokens = [start(store, omar) for _ in range(3)]
    other = start(store, lin)
    keep = tokens[0]
    n = store.run(lambda s: revoke_all_for_user(s, omar.id, except_token_hash=hash_token(keep)))
    assert n == 2
    assert resolve(store, keep, T0) is not None
    assert all(resolve(store, t, T0) is None for t in tokens[1:])
    assert resolve(store, other, T0) is not None
    assert store.run(lambda s: revoke_all_for_user(s, omar.id)) == 1


def test_disabled_user_sessions_end(store: Store) -> None:
    user = setup_user(store)
    token = start(store, user)
    # Disabled behind the API's back (e.g. by SQL): resolve refuses and revokes.
    with store.session() as s:
        s.execute(text("UPDATE users SET disabled = :d"), {"d": True})
    assert resolve(store, token, T0) is None
    assert row(store, token).revoked
    store.run(lambda s: enable(s, "omar"))
    assert resolve(store, token, T0) is None  # re-enabling does not revive sessions

    fresh = start(store, user)
    store.run(lambda s: disable(s, "omar"))  # disable() revokes at once
    assert row(store, fresh).revoked
    assert resolve(store, fresh, T0) is None


def test_password_change_ends_other_sessions(store: Store) -> None:
    user = setup_user(store)
    mine, other = start(store, user), start(store, user)
    store.run(lambda s: set_password(s, "omar", "a brand new passphrase", keep_session_hash=hash_token(mine)))
    assert resolve(store, mine, T0) is not None
    assert resolve(store, other, T0) is None


def test_complete_mfa(store: Store) -> None:
    user = setup_user(store)
    token = start(store, user, mfa_pending=True)

    def finish(s: Session) -> None:
        found = resolve_session(s, token, now=T0)
        assert found is not None and found[0].mfa_pending
        complete_mfa(found[0])

    store.run(finish)
    assert not row(store, token).mfa_pending
    assert store.run(lambda s: s.scalars(select(UserSession.mfa_pending)).all()) == [False]
