"""Password hashes as RabbitMQ keeps them, and SCRAM credentials as Kafka keeps them.

RabbitMQ's ``rabbit_password_hashing_*`` schemes store ``base64(salt + H(salt + password))``
with a random 4-byte salt and H one of SHA-256 (the default), SHA-512 or MD5 (definitions
from before 3.6), so a user exported from RabbitMQ's definitions logs in here unchanged.
An empty hash is a user without a password: no password matches it.

A SCRAM-SHA-256/512 login (RFC 5802) cannot use such a hash: the server needs the
mechanism's *stored key* and *server key*, derived from the password with PBKDF2.  Like Kafka,
the broker derives them whenever a password is set and keeps them (never the password).  The
password is taken as its UTF-8 bytes, as Kafka's own ``ScramFormatter`` takes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

SHA256: Final = "rabbit_password_hashing_sha256"
SHA512: Final = "rabbit_password_hashing_sha512"
MD5: Final = "rabbit_password_hashing_md5"
DEFAULT_ALGORITHM: Final = SHA256
ALGORITHMS: Final[dict[str, Callable[[bytes], Any]]] = {
    SHA256: hashlib.sha256,
    SHA512: hashlib.sha512,
    MD5: hashlib.md5,
}
SALT_BYTES: Final = 4

SCRAM_ITERATIONS: Final = 4096  # Kafka's minimum, and its tools' default
SCRAM_MECHANISMS: Final[dict[str, str]] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class BadHash(ValueError):
    """A stored or imported hash that cannot be one of the scheme's."""


def hash_password(password: str, algorithm: str = DEFAULT_ALGORITHM, salt: bytes | None = None) -> str:
    """``base64(salt + H(salt + utf8(password)))``, RabbitMQ's stored form."""
    digest = _algorithm(algorithm)
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return base64.b64encode(salt + digest(salt + password.encode()).digest()).decode()


def check_password(password_hash: str, algorithm: str, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from (constant time)."""
    if not password_hash:
        return False
    try:
        raw = base64.b64decode(password_hash, validate=True)
    except (binascii.Error, ValueError):
        return False
    digest = _algorithm(algorithm)
    size = digest(b"").digest_size
    if len(raw) != SALT_BYTES + size:
        return False
    salt = raw[:SALT_BYTES]
    return hmac.compare_digest(raw[SALT_BYTES:], digest(salt + password.encode()).digest())


def validate_hash(password_hash: str, algorithm: str) -> None:
    """Raise :class:`BadHash` unless ``password_hash`` has the scheme's shape ("" is none)."""
    digest = _algorithm(algorithm)
    if not password_hash:
        return
    try:
        raw = base64.b64decode(password_hash, validate=True)
    except (binascii.Error, ValueError):
        raise BadHash("password_hash is not valid base64") from None
    expected = SALT_BYTES + digest(b"").digest_size
    if len(raw) != expected:
        raise BadHash(f"a {algorithm} password_hash holds {expected} bytes, not {len(raw)}")


def _algorithm(name: str) -> Callable[[bytes], Any]:
    digest = ALGORITHMS.get(name)
    if digest is None:
        raise BadHash(f"unknown hashing_algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    return digest


@dataclass(frozen=True)
class ScramCredential:
    """One mechanism's SCRAM credential, as Kafka stores it."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def to_json(self) -> dict[str, Any]:
        b64 = base64.b64encode
        return {
            "salt": b64(self.salt).decode(),
            "stored_key": b64(self.stored_key).decode(),
            "server_key": b64(self.server_key).decode(),
            "iterations": self.iterations,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScramCredential:
        try:
            b64 = base64.b64decode
            return cls(
                b64(data["salt"], validate=True),
                b64(data["stored_key"], validate=True),
                b64(data["server_key"], validate=True),
                int(data["iterations"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise BadHash(f"bad SCRAM credential: {exc}") from None


def scram_credential(
    mechanism: str, password: str, iterations: int = SCRAM_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    """RFC 5802: SaltedPassword = PBKDF2(password, salt, i); StoredKey = H(HMAC(SP, "Client
    Key")); ServerKey = HMAC(SP, "Server Key")."""
    name = SCRAM_MECHANISMS[mechanism]
    salt = os.urandom(32) if salt is None else salt
    salted = hashlib.pbkdf2_hmac(name, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", name).digest()
    stored_key = hashlib.new(name, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", name).digest()
    return ScramCredential(salt, stored_key, server_key, iterations)


def scram_from_salted_password(
    salted: bytes, salt: bytes, iterations: int, mechanism: str
) -> ScramCredential:
    """The credential of a salted password (KIP-554: clients send SaltedPassword, never the
    password)."""
    name = SCRAM_MECHANISMS[mechanism]
    client_key = hmac.new(salted, b"Client Key", name).digest()
    stored_key = hashlib.new(name, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", name).digest()
    return ScramCredential(salt, stored_key, server_key, iterations)


def scram_credentials(password: str) -> dict[str, ScramCredential]:
    """A credential for every SCRAM mechanism the broker serves."""
    return {mechanism: scram_credential(mechanism, password) for mechanism in SCRAM_MECHANISMS}
