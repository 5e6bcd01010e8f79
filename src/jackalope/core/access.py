"""Access control: the user store, the permissions of users in virtual hosts, and the login
rules (RabbitMQ's internal authentication and authorisation backend, without a protocol).

Users and permissions are kept in ``<data_dir>/users.json`` (mode 0600, written atomically
and fsynced on every change), in the shape of RabbitMQ's definitions export: ``users``
(password hashes and SCRAM credentials, never a password) and ``permissions``.  The virtual
hosts themselves, with their limits, are in the broker's ``definitions.json`` beside their
exchanges and queues; a permission whose virtual host is gone is dropped when loaded.

On the first start (no ``users.json`` yet) the default user is created with the
``administrator`` tag and full permissions on "/", as RabbitMQ creates ``guest`` on a fresh
node; it is never re-created afterwards.  The users in ``loopback_users`` (``guest`` by
default, as RabbitMQ's ``loopback_users``) may log in only from a loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from jackalope.core.errors import NotAllowed, NotFound
from jackalope.core.passwords import MD5, SHA256, ScramCredential
from jackalope.core.permissions import BadPermission, Permission, PermissionSource
from jackalope.core.users import ADMINISTRATOR, BadUser, User, parse_tags
from jackalope.storage.files import atomic_write

log = logging.getLogger(__name__)

USERS_FILE: Final = "users.json"
DEFAULT_LOOPBACK_USERS: Final = ("guest",)


class LoginRefused(Exception):
    """Why a login failed, for the broker's log (clients get their protocol's generic refusal
    where RabbitMQ gives one)."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class AccessControl(PermissionSource):
    def __init__(self, data_dir: Path | None = None, loopback_users: Iterable[str] = DEFAULT_LOOPBACK_USERS):
        self.path = data_dir / USERS_FILE if data_dir is not None else None
        self.users: dict[str, User] = {}
        self.permissions: dict[tuple[str, str], Permission] = {}
        self.loopback_users = frozenset(loopback_users)
        self.generation = 0  # bumped on every change of a permission or user
        self.on_user_deleted: list[Callable[[str], None]] = []

    # -- the store on disk -------------------------------------------------------------------------

    def load(self, vhosts: Iterable[str]) -> bool:
        """Read ``users.json``; False if there is none yet (a first start)."""
        if self.path is None:
            return False
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path} cannot be read: {exc}") from None
        try:
            self._take(data, set(vhosts), replace=True)
        except BadUser as exc:
            raise ValueError(f"{self.path} is damaged: {exc}") from None
        return True

    def save(self) -> None:
        self.generation += 1
        if self.path is not None:
            atomic_write(self.path, json.dumps(self.definitions(), indent=1).encode(), mode=0o600)

    def create_default(self, name: str, password: str, vhost: str = "/") -> None:
        """The first start's user: administrator, every permission on ``vhost``."""
        user = User(name, tags=(ADMINISTRATOR,))
        user.set_password(password)
        self.users[name] = user
        self.permissions[(name, vhost)] = Permission()
        self.save()

    # -- users ---------------------------------------------------------------------------------

    def user(self, name: str) -> User:
        found = self.users.get(name)
        if found is None:
            raise NotFound(f"no user '{name}'")
        return found

    def user_exists(self, name: str) -> bool:
        return name in self.users

    def put_user(
        self,
        name: str,
        *,
        password: str | None = None,
        password_hash: str | None = None,
        hashing_algorithm: str | None = None,
        tags: Any = None,
    ) -> bool:
        """Create or update a user as RabbitMQ's ``PUT /api/users/{name}`` does: a password, or
        a hash, or neither (a user without a password; an existing user loses its password).
        Returns whether the user is new."""
        if not name:
            raise BadUser("a user needs a non-empty name")
        if password is not None and password_hash is not None:
            raise BadUser("both password and password_hash are provided")
        existing = self.users.get(name)
        user = User(name, tags=parse_tags(tags) if tags is not None else existing.tags if existing else ())
        if password is not None:
            user.set_password(password)
        elif password_hash is not None:
            user.set_hash(password_hash, hashing_algorithm or SHA256)
        self.users[name] = user
        self.save()
        return existing is None

    def delete_user(self, name: str) -> None:
        self.user(name)
        del self.users[name]
        for key in [k for k in self.permissions if k[0] == name]:
            del self.permissions[key]
        self.save()
        for callback in list(self.on_user_deleted):
            callback(name)

    def alter_scram(self, changes: Iterable[tuple[str, str, ScramCredential | None]]) -> None:
        """Set (or, with None, remove) SCRAM credentials: ``(user, mechanism, credential)``,
        all saved at once.  Setting one for an unknown user creates the user (no password
        hash, no tags, no permissions), as Kafka's users exist by their credentials."""
        for name, mechanism, credential in changes:
            user = self.users.get(name)
            if user is None:
                if credential is None:
                    continue
                user = self.users[name] = User(name)
            if credential is None:
                user.scram.pop(mechanism, None)
            else:
                user.scram[mechanism] = credential
        self.save()

    def authenticate(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (no other rule: see :meth:`login`)."""
        user = self.users.get(name)
        return user is not None and user.check_password(password)

    def check_source(self, name: str, peer_host: str | None) -> None:
        """RabbitMQ's loopback rule: raise LoginRefused if ``name`` may not log in from there."""
        if name in self.loopback_users and not is_loopback(peer_host):
            raise LoginRefused(f"user '{name}' can only connect via localhost")

    def login(self, name: str, password: str, peer_host: str | None) -> User:
        """The user logging in with this password from this address, or LoginRefused."""
        user = self.users.get(name)
        if user is None:
            raise LoginRefused(f"user '{name}' - invalid credentials")
        if not user.check_password(password):
            raise LoginRefused(f"user '{name}' - invalid credentials")
        self.check_source(name, peer_host)
        return user

    # -- permissions -------------------------------------------------------------------------------

    def permission(self, user: str, vhost: str) -> Permission | None:
        return self.permissions.get((user, vhost))

    def set_permission(self, user: str, vhost: str, permission: Permission) -> bool:
        """Returns whether the user had none in ``vhost`` (the vhost's existence is the caller's)."""
        self.user(user)
        new = (user, vhost) not in self.permissions
        self.permissions[(user, vhost)] = permission
        self.save()
        return new

    def clear_permission(self, user: str, vhost: str) -> None:
        if self.permissions.pop((user, vhost), None) is None:
            raise NotFound(f"no permissions for user '{user}' in vhost '{vhost}'")
        self.save()

    def vhost_deleted(self, vhost: str) -> None:
        keys = [k for k in self.permissions if k[1] == vhost]
        for key in keys:
            del self.permissions[key]
        if keys:
            self.save()

    def check_vhost_access(self, user: str, vhost: str) -> None:
        """connection.open's rule: any permission in the vhost lets the user in."""
        if (user, vhost) not in self.permissions:
            raise NotAllowed(f"access to vhost '{vhost}' refused for user '{user}'")

    def vhosts_of(self, user: str) -> list[str]:
        return [v for (u, v) in self.permissions if u == user]

    # -- definitions ---------------------------------------------------------------------------

    def definitions(self) -> dict[str, Any]:
        return {
            "users": [u.definition() for u in self.users.values()],
            "permissions": [{"user": u, "vhost": v, **p.to_json()} for (u, v), p in self.permissions.items()],
        }

    def import_definitions(self, data: Mapping[str, Any], vhosts: Iterable[str]) -> None:
        """Take RabbitMQ's ``users`` and ``permissions`` (all checked before any is taken)."""
        self._take(data, set(vhosts), replace=False, strict=True)
        self.save()

    def _take(self, data: Any, vhosts: set[str], *, replace: bool, strict: bool = False) -> None:
        if not isinstance(data, dict):
            raise BadUser("definitions must be a JSON object")
        version = str(data.get("rabbit_version") or data.get("rabbitmq_version") or "")
        legacy = _version(version) < (3, 6) if version else False
        users_data = data.get("users") or []
        perms_data = data.get("permissions") or []
        if not isinstance(users_data, list) or not isinstance(perms_data, list):
            raise BadUser("users and permissions must be lists")
        users = {}
        for item in users_data:
            if not isinstance(item, dict):
                raise BadUser("each user must be an object")
            user = User.from_definition(item, MD5 if legacy else SHA256)
            users[user.name] = user
        known = set(users) if replace else set(users) | set(self.users)
        permissions = {}
        for item in perms_data:
            if not isinstance(item, dict) or not isinstance(item.get("user"), str):
                raise BadUser("each permission must be an object naming a user and a vhost")
            key = (item["user"], str(item.get("vhost")))
            try:
                permission = Permission.from_json(item)
            except BadPermission as exc:
                raise BadUser(f"permission of user '{key[0]}' in vhost '{key[1]}': {exc}") from None
            if key[0] not in known or key[1] not in vhosts:
                if strict:
                    missing = f"user '{key[0]}'" if key[0] not in known else f"vhost '{key[1]}'"
                    raise BadUser(f"permission of user '{key[0]}' in vhost '{key[1]}': no {missing}")
                log.warning("dropping the permission of user %r in vhost %r: gone", *key)
                continue
            permissions[key] = permission
        if replace:
            self.users, self.permissions = users, permissions
        else:
            self.users.update(users)
            self.permissions.update(permissions)
        self.generation += 1


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
