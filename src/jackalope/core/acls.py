"""Access control lists as Kafka keeps them (no protocol: the numbers are Kafka's enums).

An ACL binding is a resource pattern (type, name, LITERAL or PREFIXED) and an entry
(principal ``Type:name``, host, operation, ALLOW or DENY).  The bindings are kept in
``<data_dir>/acls.json``, written atomically and fsynced on every change, like the users.

:meth:`Acls.decide` is Kafka's ``StandardAuthorizer`` rule for one principal, host,
operation and resource: a matching DENY wins; else a matching ALLOW; ALLOW of Read, Write,
Delete or Alter implies Describe, and AlterConfigs implies DescribeConfigs; the principal
``User:*`` and the host ``*`` match everyone, and a LITERAL ``*`` name every resource of its
type.  It answers ``None`` when no binding matched, and says whether the resource has any
binding at all (Kafka's ``allow.everyone.if.no.acl.found`` looks at that).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Final

from jackalope.storage.files import atomic_write

ACLS_FILE: Final = "acls.json"
WILDCARD: Final = "*"
WILDCARD_PRINCIPAL: Final = "User:*"
CLUSTER_NAME: Final = "kafka-cluster"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class Permission(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# Resource types whose ACLs this broker refuses: it has no delegation tokens (nor the
# user-scoped token ACLs that go with them).
UNSUPPORTED_TYPES: Final = frozenset({ResourceType.DELEGATION_TOKEN, ResourceType.USER})
IMPLIES_DESCRIBE: Final = frozenset(
    {Operation.DESCRIBE, Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}
)
IMPLIES_DESCRIBE_CONFIGS: Final = frozenset({Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS})


class InvalidAcl(ValueError):
    """A binding or filter Kafka answers with INVALID_REQUEST (the message says why)."""


def _enum(cls: type[IntEnum], value: int) -> Any:
    try:
        return cls(value)
    except ValueError:
        return cls(0)  # UNKNOWN


def check_principal(principal: str) -> None:
    kind, sep, name = principal.partition(":")
    if not sep or not kind or not name:
        raise InvalidAcl(
            f"Could not parse principal from `{principal}` "
            "(no colon is present separating the principal type from the principal name)"
        )


@dataclass(frozen=True)
class AclBinding:
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: Operation
    permission: Permission

    @classmethod
    def make(
        cls,
        resource_type: int,
        resource_name: str,
        pattern_type: int,
        principal: str,
        host: str,
        operation: int,
        permission: int,
    ) -> AclBinding:
        """A new binding, validated as Kafka's controller validates one (InvalidAcl)."""
        rtype = _enum(ResourceType, resource_type)
        ptype = _enum(PatternType, pattern_type)
        op = _enum(Operation, operation)
        perm = _enum(Permission, permission)
        if rtype in (ResourceType.UNKNOWN, ResourceType.ANY):
            raise InvalidAcl(f"Invalid resourceType {rtype.name}")
        if rtype in UNSUPPORTED_TYPES:
            raise InvalidAcl(
                f"ACLs on resource type {rtype.name} are not supported: this broker has no delegation tokens"
            )
        if ptype not in (PatternType.LITERAL, PatternType.PREFIXED):
            raise InvalidAcl(f"Invalid patternType {ptype.name}")
        if op in (Operation.UNKNOWN, Operation.ANY):
            raise InvalidAcl(f"Invalid operation {op.name}")
        if perm not in (Permission.ALLOW, Permission.DENY):
            raise InvalidAcl(f"Invalid permissionType {perm.name}")
        if not resource_name:
            raise InvalidAcl("Invalid empty resource name")
        if rtype == ResourceType.CLUSTER and resource_name != CLUSTER_NAME:
            raise InvalidAcl(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
        check_principal(principal)
        if not host:
            raise InvalidAcl("Invalid empty host")
        return cls(rtype, resource_name, ptype, principal, host, op, perm)

    def to_json(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type.name,
            "resource_name": self.resource_name,
            "pattern_type": self.pattern_type.name,
            "principal": self.principal,
            "host": self.host,
            "operation": self.operation.name,
            "permission": self.permission.name,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AclBinding:
        try:
            return cls(
                ResourceType[data["resource_type"]],
                str(data["resource_name"]),
                PatternType[data["pattern_type"]],
                str(data["principal"]),
                str(data["host"]),
                Operation[data["operation"]],
                Permission[data["permission"]],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad ACL {data!r}: {exc}") from None

    def matches_resource(self, resource_type: ResourceType, name: str) -> bool:
        """Whether this binding's pattern covers the (literal) resource."""
        if self.resource_type != resource_type:
            return False
        if self.pattern_type == PatternType.PREFIXED:
            return name.startswith(self.resource_name)
        return self.resource_name in (name, WILDCARD)

    def result(self, principals: frozenset[str], host: str, operation: Operation) -> Permission | None:
        """ALLOW or DENY if this binding applies to the principal, host and operation."""
        if self.principal not in principals or self.host not in (WILDCARD, host):
            return None
        if self.operation != Operation.ALL:
            if self.permission == Permission.ALLOW:
                if operation == Operation.DESCRIBE:
                    if self.operation not in IMPLIES_DESCRIBE:
                        return None
                elif operation == Operation.DESCRIBE_CONFIGS:
                    if self.operation not in IMPLIES_DESCRIBE_CONFIGS:
                        return None
                elif operation != self.operation:
                    return None
            elif operation != self.operation:
                return None
        return self.permission


@dataclass(frozen=True)
class AclFilter:
    """Kafka's AclBindingFilter: ANY values and None names/principals/hosts match all."""

    resource_type: ResourceType
    resource_name: str | None
    pattern_type: PatternType
    principal: str | None
    host: str | None
    operation: Operation
    permission: Permission

    @classmethod
    def make(
        cls,
        resource_type: int,
        resource_name: str | None,
        pattern_type: int,
        principal: str | None,
        host: str | None,
        operation: int,
        permission: int,
    ) -> AclFilter:
        found = cls(
            _enum(ResourceType, resource_type),
            resource_name,
            _enum(PatternType, pattern_type),
            principal,
            host,
            _enum(Operation, operation),
            _enum(Permission, permission),
        )
        if found.resource_type == ResourceType.UNKNOWN or found.pattern_type == PatternType.UNKNOWN:
            raise InvalidAcl("Unknown patternFilter.")
        if found.operation == Operation.UNKNOWN or found.permission == Permission.UNKNOWN:
            raise InvalidAcl("Unknown entryFilter.")
        return found

    def matches(self, acl: AclBinding) -> bool:
        if self.resource_type not in (ResourceType.ANY, acl.resource_type):
            return False
        pattern = self.pattern_type
        if pattern not in (PatternType.ANY, PatternType.MATCH, acl.pattern_type):
            return False
        name = self.resource_name
        if name is not None:
            if pattern in (PatternType.ANY, acl.pattern_type):
                if name != acl.resource_name:
                    return False
            elif acl.pattern_type == PatternType.LITERAL:  # MATCH
                if acl.resource_name not in (name, WILDCARD):
                    return False
            elif not name.startswith(acl.resource_name):  # MATCH against PREFIXED
                return False
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation not in (Operation.ANY, acl.operation):
            return False
        return self.permission in (Permission.ANY, acl.permission)


@dataclass(frozen=True)
class Decision:
    permission: Permission | None  # None: no binding applies to this principal
    resource_has_acls: bool


class Acls:
    """The broker's ACL bindings, in creation order, stored in ``acls.json``."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.path = data_dir / ACLS_FILE if data_dir is not None else None
        self.bindings: list[AclBinding] = []
        self.generation = 0  # bumped on every change

    def load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path} cannot be read: {exc}") from None
        try:
            self.bindings = [AclBinding.from_json(item) for item in data.get("acls", [])]
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{self.path} is damaged: {exc}") from None
        self.generation += 1

    def _save(self) -> None:
        self.generation += 1
        if self.path is not None:
            data = {"acls": [b.to_json() for b in self.bindings]}
            atomic_write(self.path, json.dumps(data, indent=1).encode(), mode=0o600)

    def create(self, bindings: Iterable[AclBinding]) -> None:
        """Add the bindings (one that exists already is not added twice); one write."""
        known = set(self.bindings)
        added = False
        for binding in bindings:
            if binding not in known:
                self.bindings.append(binding)
                known.add(binding)
                added = True
        if added:
            self._save()

    def describe(self, acl_filter: AclFilter) -> list[AclBinding]:
        return [b for b in self.bindings if acl_filter.matches(b)]

    def delete(self, filters: Iterable[AclFilter]) -> list[list[AclBinding]]:
        """Remove what each filter matches; the bindings each one removed (one write)."""
        removed: list[list[AclBinding]] = []
        gone: set[AclBinding] = set()
        for acl_filter in filters:
            matched = [b for b in self.bindings if acl_filter.matches(b)]
            removed.append(matched)
            gone.update(matched)
        if gone:
            self.bindings = [b for b in self.bindings if b not in gone]
            self._save()
        return removed

    def decide(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType, name: str
    ) -> Decision:
        principals = frozenset({principal, WILDCARD_PRINCIPAL})
        allowed = False
        has_acls = False
        for binding in self.bindings:
            if not binding.matches_resource(resource_type, name):
                continue
            has_acls = True
            result = binding.result(principals, host, operation)
            if result == Permission.DENY:
                return Decision(Permission.DENY, True)
            if result == Permission.ALLOW:
                allowed = True
        return Decision(Permission.ALLOW if allowed else None, has_acls)
