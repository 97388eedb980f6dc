"""Password hashing with Argon2id (argon2-cffi defaults follow RFC 9106's recommended parameters).

Password policy follows NCSC "Password policy: updating your approach": length over composition rules, no forced
expiry, and a check against the most common passwords.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256

# A few of the most common passwords (NCSC "PwnedPasswordsTop100k" leaders); long enough ones are refused too.
_COMMON = frozenset(
    {
        "123456789012",
        "password1234",
        "passwordpassword",
        "qwertyuiopas",
        "111111111111",
        "000000000000",
        "iloveyou1234",
        "administrator",
        "changemechangeme",
        "letmeinletmein",
    }
)


class _Hashing:
    """The hasher and a dummy hash made with the same parameters.

    The dummy is verified against when the user name is unknown, so a wrong name takes as long as a wrong password
    and the response time does not reveal which accounts exist.
    """

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.dummy_hash = hasher.hash("not a real password, only here to spend the same time")


_hashing = _Hashing(PasswordHasher())


def use_hasher(hasher: PasswordHasher) -> None:
    """Swap the hasher (the test suite uses argon2's cheapest profile to stay fast; production never calls this)."""
    global _hashing
    _hashing = _Hashing(hasher)


class WeakPasswordError(ValueError):
    pass


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"Passwords must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"Passwords must be at most {MAX_PASSWORD_LENGTH} characters long")
    if password.lower() in _COMMON or len(set(password)) < 4:
        raise WeakPasswordError("That password is too easy to guess; choose another")


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hashing.hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-effort check: an account without a password still costs one Argon2 verification."""
    if len(password) > MAX_PASSWORD_LENGTH:
        password = password[:MAX_PASSWORD_LENGTH]
    try:
        return (
            _hashing.hasher.verify(stored_hash or _hashing.dummy_hash, password) and stored_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def rehash(password: str) -> str:
    """A fresh hash for a password that just verified (parameters upgraded); no policy check on old passwords."""
    return _hashing.hasher.hash(password)


def needs_rehash(stored_hash: str) -> bool:
    return _hashing.hasher.check_needs_rehash(stored_hash)
