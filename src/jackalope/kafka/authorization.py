"""Kafka's authorisation of a request: which principal may do which operation on what.

The principal of a connection is ``User:<name>`` of the broker user it authenticated as
(SASL), or ``User:ANONYMOUS`` on a listener without SASL.  ``ANONYMOUS`` from an address
``kafka_anonymous`` does not allow (by default any but a loopback one) is denied everything.
Otherwise the decision, for one operation on one resource (:mod:`jackalope.core.acls` holds
the bindings):

1. A user tagged ``administrator`` is a super user: allowed.
2. Kafka's ACL rule: a DENY binding that applies wins; else an ALLOW binding allows.
   A principal of an OAUTHBEARER token that names no broker user has only the ACLs (and
   rule 3): no AMQP permissions to fall back on.
3. With ``kafka_allow_everyone_if_no_acl_found`` (Kafka's
   ``allow.everyone.if.no.acl.found=true``): a resource that no binding names at all is
   allowed to every principal, and one that has bindings, none of which applies to the
   principal, is denied to it (Kafka's rule, for ``ANONYMOUS`` too; the AMQP permissions are
   not consulted).
4. Otherwise (the default), no binding applies to the principal:

   - ``ANONYMOUS`` (no SASL on the listener): allowed, so a listener without SASL stays open,
     as Kafka's PLAINTEXT listener without an authorizer is, and only DENY bindings hold it
     back.  (Kafka's ``allow.everyone.if.no.acl.found=true`` would instead deny it every
     resource that has a binding for anyone else: one ALLOW on the cluster for ``User:alice``
     would lock the anonymous admin out of the ACL APIs for good.);
   - a broker user: its AMQP permissions in vhost "/" (where topics and streams live), on
     the topic's name as RabbitMQ's stream protocol checks a stream: Read needs *read*,
     Write *write*, Create, Delete, Alter and AlterConfigs *configure*, Describe and
     DescribeConfigs any of the three.  Groups and transactional ids are not AMQP resources:
     any permission in "/" allows them (their topics are still checked).  On the cluster,
     IdempotentWrite needs a permission in "/", Describe and DescribeConfigs the
     ``monitoring`` tag; Create (of any topic), Alter, AlterConfigs and ClusterAction only
     an ACL (or a super user).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any, Final

from jackalope.core.acls import CLUSTER_NAME, Operation, Permission, ResourceType
from jackalope.core.permissions import OPERATIONS
from jackalope.core.users import User
from jackalope.kafka import internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.protocol import ErrorCode

# the message of every CLUSTER_AUTHORIZATION_FAILED, as Kafka words it
CLUSTER_DENIED: Final = "Cluster authorization failed."

ANONYMOUS: Final = "ANONYMOUS"
NO_TOPIC_ID: Final = uuid.UUID(int=0)
STREAM_VHOST: Final = "/"

_TOPIC_PERMISSION: Final[dict[Operation, tuple[str, ...]]] = {
    Operation.READ: ("read",),
    Operation.WRITE: ("write",),
    Operation.CREATE: ("configure",),
    Operation.DELETE: ("configure",),
    Operation.ALTER: ("configure",),
    Operation.ALTER_CONFIGS: ("configure",),
    Operation.DESCRIBE: OPERATIONS,
    Operation.DESCRIBE_CONFIGS: OPERATIONS,
}


def principal(ctx: RequestContext) -> str:
    """``User:<name>`` of the connection (``User:ANONYMOUS`` without SASL)."""
    return f"User:{ctx.connection.principal or ANONYMOUS}"


def authorized(ctx: RequestContext, operation: Operation, resource_type: ResourceType, name: str) -> bool:
    """Whether the connection's principal may do ``operation`` on the resource."""
    core = ctx.broker.core
    user_name = ctx.connection.principal
    if user_name is None and not ctx.connection.anonymous_allowed:
        return False  # kafka_anonymous: no anonymous access from this client's address
    user = core.access.users.get(user_name) if user_name is not None else None
    if user is not None and user.is_administrator:
        return True
    decision = core.acls.decide(principal(ctx), ctx.connection.client_host, operation, resource_type, name)
    if decision.permission is not None:
        return decision.permission == Permission.ALLOW
    if user_name is not None and user is None:
        if ctx.connection.auth_mechanism == "OAUTHBEARER" and ctx.broker.allow_everyone_if_no_acl_found:
            return not decision.resource_has_acls  # a token's principal: ACLs only, no AMQP fallback
        return False  # deleted since it logged in, or a token's principal no ACL allows
    if ctx.broker.allow_everyone_if_no_acl_found:
        # Kafka's authorizer with allow.everyone.if.no.acl.found=true: a resource no binding
        # names is everyone's; one that has bindings, none for this principal, is no one else's
        return not decision.resource_has_acls
    if user is None:
        return True  # ANONYMOUS
    return _amqp_fallback(ctx, user, operation, resource_type, name)


def _amqp_fallback(
    ctx: RequestContext, user: User, operation: Operation, resource_type: ResourceType, name: str
) -> bool:
    permission = ctx.broker.core.access.permission(user.name, STREAM_VHOST)
    if permission is None:
        return False
    if resource_type == ResourceType.TOPIC:
        needed = _TOPIC_PERMISSION.get(operation, ())
        return any(permission.allows(p, name) for p in needed)  # type: ignore[arg-type]
    if resource_type in (ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID):
        return True
    if resource_type == ResourceType.CLUSTER:
        if operation == Operation.IDEMPOTENT_WRITE:
            return True
        if operation in (Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS):
            return user.is_monitor
    return False


def topic(ctx: RequestContext, operation: Operation, name: str) -> bool:
    return authorized(ctx, operation, ResourceType.TOPIC, name)


def topic_error(ctx: RequestContext, operation: Operation, name: str) -> int:
    """TOPIC_AUTHORIZATION_FAILED, or NONE (0) when ``operation`` on the topic is allowed."""
    return ErrorCode.none if topic(ctx, operation, name) else ErrorCode.topic_authorization_failed


def denied_topics(ctx: RequestContext, operation: Operation, names: Iterable[str]) -> set[str]:
    """The topics of ``names`` on which ``operation`` is not allowed."""
    return {n for n in set(names) if not topic(ctx, operation, n)}


def group(ctx: RequestContext, operation: Operation, group_id: str) -> bool:
    return authorized(ctx, operation, ResourceType.GROUP, group_id)


def group_error(ctx: RequestContext, operation: Operation, group_id: str) -> int:
    """GROUP_AUTHORIZATION_FAILED, or NONE (0)."""
    return ErrorCode.none if group(ctx, operation, group_id) else ErrorCode.group_authorization_failed


def cluster(ctx: RequestContext, operation: Operation) -> bool:
    return authorized(ctx, operation, ResourceType.CLUSTER, CLUSTER_NAME)


def cluster_error(ctx: RequestContext, operation: Operation) -> int:
    """CLUSTER_AUTHORIZATION_FAILED, or NONE (0)."""
    return ErrorCode.none if cluster(ctx, operation) else ErrorCode.cluster_authorization_failed


def transactional_id(ctx: RequestContext, operation: Operation, txn_id: str) -> bool:
    return authorized(ctx, operation, ResourceType.TRANSACTIONAL_ID, txn_id)


def transactional_id_error(ctx: RequestContext, operation: Operation, txn_id: str) -> int:
    """TRANSACTIONAL_ID_AUTHORIZATION_FAILED, or NONE (0)."""
    if transactional_id(ctx, operation, txn_id):
        return ErrorCode.none
    return ErrorCode.transactional_id_authorization_failed


def may_create_topic(ctx: RequestContext, name: str) -> bool:
    """Create on the cluster, or on the topic (what CreateTopics and auto-creation need)."""
    return cluster(ctx, Operation.CREATE) or topic(ctx, Operation.CREATE, name)


def may_write_somewhere(ctx: RequestContext) -> bool:
    """IdempotentWrite on the cluster, or Write on some topic (Kafka 4's InitProducerId rule
    for an idempotent producer, ``authorizeByResourceType``)."""
    if cluster(ctx, Operation.IDEMPOTENT_WRITE):
        return True
    return any(topic(ctx, Operation.WRITE, t.name) for t in ctx.broker.topics)


def topic_key_error(ctx: RequestContext, operation: Operation, key: str | uuid.UUID) -> int:
    """TOPIC_AUTHORIZATION_FAILED or NONE for a topic named or given by id (an unknown id is
    the handler's to answer: NONE)."""
    if isinstance(key, uuid.UUID):
        found = ctx.broker.topics.by_id(key) or internal_topics.find(ctx.broker, key)
        if found is None:
            return ErrorCode.none
        key = found.name
    return topic_error(ctx, operation, key)


def visible_metadata(ctx: RequestContext, entries: Iterable[Any], *, listed_all: bool) -> list[Any]:
    """Metadata's topic entries as the principal may see them: a topic it may not describe is
    left out of a listing of all topics, and answered TOPIC_AUTHORIZATION_FAILED (without its
    id or partitions) when named, as Kafka does."""
    out = []
    for entry in entries:
        if entry.name is None or topic(ctx, Operation.DESCRIBE, entry.name):
            out.append(entry)
        elif not listed_all:
            out.append(
                dataclasses.replace(
                    entry,
                    error_code=ErrorCode.topic_authorization_failed,
                    topic_id=NO_TOPIC_ID,
                    is_internal=False,
                    partitions=(),
                )
            )
    return out


SUPPORTED_OPERATIONS: Final[dict[ResourceType, tuple[Operation, ...]]] = {
    ResourceType.TOPIC: (
        Operation.READ,
        Operation.WRITE,
        Operation.CREATE,
        Operation.DESCRIBE,
        Operation.DELETE,
        Operation.ALTER,
        Operation.DESCRIBE_CONFIGS,
        Operation.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (Operation.READ, Operation.DESCRIBE, Operation.DELETE),
    ResourceType.CLUSTER: (
        Operation.CREATE,
        Operation.CLUSTER_ACTION,
        Operation.DESCRIBE_CONFIGS,
        Operation.ALTER_CONFIGS,
        Operation.IDEMPOTENT_WRITE,
        Operation.ALTER,
        Operation.DESCRIBE,
    ),
    ResourceType.TRANSACTIONAL_ID: (Operation.DESCRIBE, Operation.WRITE),
}


def authorized_operations(ctx: RequestContext, resource_type: ResourceType, name: str) -> int:
    """KIP-430's bit field: bit ``n`` set for each operation of code ``n`` that is allowed."""
    bits = 0
    for operation in SUPPORTED_OPERATIONS[resource_type]:
        if authorized(ctx, operation, resource_type, name):
            bits |= 1 << int(operation)
    return bits
