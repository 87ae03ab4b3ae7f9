from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from rtcc.errors import ValidationFailed
from rtcc.oversight import passwords
from rtcc.oversight.passwords import (
    check_password_policy,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_hash_and_verify() -> None:
    h = hash_password("a long enough passphrase")
    assert h.startswith("$argon2id$")
    assert "a long enough passphrase" not in h
    assert verify_password(h, "a long enough passphrase")
    assert not verify_password(h, "a long enough passphrasE")
    assert not verify_password("not-a-hash", "anything at all")


def test_hashes_are_salted() -> None:
    assert hash_password("same password here") != hash_password("same password here")


def test_needs_rehash_when_parameters_change(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap = hash_password("a long enough passphrase")  # made with the fast test hasher
    assert not needs_rehash(cheap)
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher())
    assert needs_rehash(cheap)
    assert verify_password(cheap, "a long enough passphrase")
    assert needs_rehash("garbage")


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 12"),
        ("elevenchars", "at least 12"),
        ("Password1234", "most common"),
        ("QWERTY123456", "most common"),
        ("aaaaaaaaaaaaaaa", "repeats"),
        ("abababababababab", "repeats"),
        ("x" * 2000, "at most"),
    ],
)
def test_policy_refuses(password: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        check_password_policy(password)
    assert fragment in err.value.message


def test_policy_refuses_username_inside() -> None:
    with pytest.raises(ValidationFailed, match="username"):
        check_password_policy("my name is dispatcher7!", username="Dispatcher7")


def test_policy_accepts_good_passwords() -> None:
    check_password_policy("twelve chars")
    check_password_policy("correct horse battery staple")
    check_password_policy(generate_password())


def test_generate_password() -> None:
    pw = generate_password()
    assert len(pw) == 20
    assert pw.isalnum() and pw.isascii()
    assert not set(pw) & set("0O1lI")
    assert len({generate_password() for _ in range(50)}) == 50
    with pytest.raises(ValueError):
        generate_password(8)
