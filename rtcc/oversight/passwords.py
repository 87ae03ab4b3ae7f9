"""Password hashing (Argon2id) and the minimum password policy.

Hashes use argon2-cffi's :class:`~argon2.PasswordHasher` with its defaults
(Argon2id, RFC 9106 "low memory" profile: 64 MiB, 3 passes, 4 lanes). When the
defaults change, :func:`needs_rehash` says so and a successful login rehashes.

The policy is deliberately short (length and a list of the most common
passwords) following NIST SP 800-63B: no composition rules, no forced expiry.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rtcc.errors import ValidationFailed

MIN_LENGTH = 12
"""Shortest acceptable password, in characters."""

MAX_LENGTH = 1024
"""Longest acceptable password, in characters (bounds the hashing work)."""

COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456123456",
        "000000000000",
        "111111111111",
        "123123123123",
        "abc123abc123",
        "abcdefghijkl",
        "adminadmin12",
        "administrator",
        "changeme1234",
        "changemechangeme",
        "correcthorsebatterystaple",
        "iloveyou1234",
        "letmein12345",
        "letmeinletmein",
        "password1234",
        "password12345",
        "password123!",
        "passwordpassword",
        "password1!password1!",
        "p@ssw0rd1234",
        "p@ssword1234",
        "qwerty123456",
        "qwertyqwerty",
        "qwertyuiopas",
        "qwertyuiop12",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "welcome12345",
        "welcomewelcome",
        "trustno1trustno1",
        "monkeymonkey",
        "dragondragon",
        "football1234",
        "baseball1234",
        "sunshine1234",
        "superman1234",
        "princess1234",
        "starwars1234",
        "masterkey123",
        "rtccrtccrtcc",
        "rtcc12345678",
        "crimecenter1",
        "crimecenter123",
        "policepolice",
        "police123456",
    }
)
"""Passwords refused outright (compared case-insensitively)."""

_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Letters and digits without look-alikes (0/O, 1/l/I)."""

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (an encoded string with salt and parameters)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; a malformed hash never matches."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether ``password_hash`` was made with other parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def spend_verification(password: str) -> None:
    """Do the work of one verification against a throwaway hash.

    Used when a username does not exist, so that answering "no such user"
    takes as long as answering "wrong password".
    """
    verify_password(_dummy_hash(), password)


def check_password_policy(password: str, *, username: str | None = None) -> None:
    """Refuse a password that is too short, too long, common or the username.

    Raises
    ------
    ValidationFailed
        With a message saying which rule the password breaks.
    """
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(
            f"password too short: use at least {MIN_LENGTH} characters "
            f"(a few unrelated words make a good one)"
        )
    if len(password) > MAX_LENGTH:
        raise ValidationFailed(f"password too long: use at most {MAX_LENGTH} characters")
    low = password.lower()
    if low in COMMON_PASSWORDS:
        raise ValidationFailed("password is one of the most common passwords; choose another")
    if len(set(low)) <= 2:
        raise ValidationFailed("password repeats one or two characters; choose another")
    if username and len(username) >= 3 and username.lower() in low:
        raise ValidationFailed("password must not contain the username")


def generate_password(length: int = 20) -> str:
    """A random, readable password (letters and digits without look-alikes).

    Twenty characters from a 56-symbol alphabet carry about 116 bits.
    """
    if length < MIN_LENGTH:
        raise ValueError(f"generated passwords have at least {MIN_LENGTH} characters")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
