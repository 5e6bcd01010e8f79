"""The broker's users: names, password hashes, tags and SCRAM credentials (no protocol).

A user is what RabbitMQ's definitions export holds (``name``, ``password_hash``,
``hashing_algorithm``, ``tags``, ``limits``) plus the SCRAM credentials Kafka clients log
in with (:mod:`jackalope.core.passwords`).  Setting a password stores its hash and its SCRAM
credentials, never the password.  A user imported with only a hash (from RabbitMQ) has no
SCRAM credentials: it logs in with PLAIN (AMQP, HTTP, Kafka SASL/PLAIN), and SCRAM fails for
it until its password is set again.

Tags are RabbitMQ's: ``administrator``, ``monitoring``, ``policymaker``, ``management`` and
``impersonator`` mean what they mean there; any other tag is kept and means nothing, as in
RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from jackalope.core import passwords
from jackalope.core.passwords import ScramCredential

ADMINISTRATOR: Final = "administrator"
MONITORING: Final = "monitoring"
POLICYMAKER: Final = "policymaker"
MANAGEMENT: Final = "management"
IMPERSONATOR: Final = "impersonator"
MANAGEMENT_TAGS: Final = frozenset({ADMINISTRATOR, MONITORING, POLICYMAKER, MANAGEMENT})


class BadUser(ValueError):
    """A user definition that cannot be taken (the reason names the field)."""


def parse_tags(value: Any) -> tuple[str, ...]:
    """Tags as RabbitMQ takes them: a list, or one comma-separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise BadUser("tags must be a list or a comma-separated string")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise BadUser("each tag must be a string")
        tag = item.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


@dataclass
class User:
    name: str
    password_hash: str = ""  # "" : no password (no password login)
    hashing_algorithm: str = passwords.DEFAULT_ALGORITHM
    tags: tuple[str, ...] = ()
    scram: dict[str, ScramCredential] = field(default_factory=dict)

    def set_password(self, password: str | None) -> None:
        """A new password (None: none): its hash and SCRAM credentials replace the old ones."""
        if password is None:
            self.password_hash, self.scram = "", {}
            return
        self.hashing_algorithm = passwords.DEFAULT_ALGORITHM
        self.password_hash = passwords.hash_password(password)
        self.scram = passwords.scram_credentials(password)

    def set_hash(self, password_hash: str, algorithm: str) -> None:
        """A hash from elsewhere (RabbitMQ's definitions): no SCRAM credentials can be made."""
        try:
            passwords.validate_hash(password_hash, algorithm)
        except passwords.BadHash as exc:
            raise BadUser(str(exc)) from None
        self.password_hash, self.hashing_algorithm, self.scram = password_hash, algorithm, {}

    def check_password(self, password: str) -> bool:
        return passwords.check_password(self.password_hash, self.hashing_algorithm, password)

    @property
    def is_administrator(self) -> bool:
        return ADMINISTRATOR in self.tags

    @property
    def is_monitor(self) -> bool:
        return ADMINISTRATOR in self.tags or MONITORING in self.tags

    @property
    def is_policymaker(self) -> bool:
        """May set policies (in the vhosts it has permissions in)."""
        return ADMINISTRATOR in self.tags or POLICYMAKER in self.tags

    @property
    def may_manage(self) -> bool:
        """May use the management (HTTP) API at all."""
        return not MANAGEMENT_TAGS.isdisjoint(self.tags)

    def definition(self) -> dict[str, Any]:
        """RabbitMQ's definitions shape, plus the SCRAM credentials."""
        return {
            "name": self.name,
            "password_hash": self.password_hash,
            "hashing_algorithm": self.hashing_algorithm,
            "tags": list(self.tags),
            "limits": {},
            "scram_credentials": {m: c.to_json() for m, c in self.scram.items()},
        }

    @classmethod
    def from_definition(cls, data: Mapping[str, Any], default_algorithm: str = passwords.SHA256) -> User:
        """A user from RabbitMQ's definitions (or ours); ``default_algorithm`` for entries
        without ``hashing_algorithm`` (MD5 in definitions from before RabbitMQ 3.6)."""
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise BadUser("a user needs a non-empty name")
        password_hash = data.get("password_hash", "")
        algorithm = data.get("hashing_algorithm") or default_algorithm
        if not isinstance(password_hash, str) or not isinstance(algorithm, str):
            raise BadUser(f"user '{name}': password_hash and hashing_algorithm must be strings")
        user = cls(name, tags=parse_tags(data.get("tags")))
        user.set_hash(password_hash, algorithm)
        scram = data.get("scram_credentials") or {}
        if not isinstance(scram, dict):
            raise BadUser(f"user '{name}': scram_credentials must be an object")
        try:
            user.scram = {
                m: ScramCredential.from_json(c) for m, c in scram.items() if m in passwords.SCRAM_MECHANISMS
            }
        except passwords.BadHash as exc:
            raise BadUser(f"user '{name}': {exc}") from None
        return user
