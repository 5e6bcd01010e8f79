"""The cluster's admin APIs on one node: SCRAM credentials (KIP-554), log dirs, leader
elections, partition reassignments and the KRaft quorum.

One broker, node 0, is the only replica and the leader of every partition, and the only
voter of the quorum: an election is never needed (ELECTION_NOT_NEEDED, as Kafka answers when
the preferred leader leads), no reassignment is ever in progress, and a reassignment to
replicas ``[0]`` is a no-op.  The SCRAM credentials are the broker users' (core/access.py):
altering one makes SCRAM login with it work at once.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import Counter
from typing import Any, Final

from jackalope.core.acls import Operation
from jackalope.core.passwords import ScramCredential, scram_from_salted_password
from jackalope.kafka import authorization
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

SCRAM_TYPES: Final = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
SCRAM_TYPE_OF: Final = {v: k for k, v in SCRAM_TYPES.items()}
MIN_ITERATIONS: Final = 4096
MAX_ITERATIONS: Final = 16384
METADATA_TOPIC: Final = "__cluster_metadata"
PREFERRED, UNCLEAN = 0, 1


# -- DescribeUserScramCredentials / AlterUserScramCredentials ---------------------------------------


async def handle_describe_user_scram_credentials(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, ctx.api_version)
    if not authorization.cluster(ctx, Operation.DESCRIBE):
        return build(
            mod.DescribeUserScramCredentialsResponse,
            throttle_time=0,
            error_code=ErrorCode.cluster_authorization_failed,
            error_message=authorization.CLUSTER_DENIED,
            results=(),
        )
    users = ctx.broker.core.access.users
    if request.users:
        counts = Counter(u.name for u in request.users)
    else:
        counts = Counter(name for name, user in users.items() if user.scram)
    results = []
    for name, count in counts.items():
        error, message, infos = ErrorCode.none, None, ()
        user = users.get(name)
        if count > 1:
            error = ErrorCode.duplicate_resource
            message = f"Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
        elif user is None or not user.scram:
            error = ErrorCode.resource_not_found
            message = f"Attempt to describe a user credential that does not exist: {name}"
        else:
            infos = tuple(
                build(mod.CredentialInfo, mechanism=SCRAM_TYPE_OF[m], iterations=c.iterations)
                for m, c in sorted(user.scram.items())
                if m in SCRAM_TYPE_OF
            )
        results.append(
            build(
                mod.DescribeUserScramCredentialsResult,
                user=name,
                error_code=error,
                error_message=message,
                credential_infos=infos,
            )
        )
    return build(
        mod.DescribeUserScramCredentialsResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        error_message=None,
        results=tuple(results),
    )


def _check_scram(ctx: RequestContext, name: str, mechanism: int) -> tuple[int, str] | None:
    if not name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if mechanism not in SCRAM_TYPES:
        return ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"
    return None


async def handle_alter_user_scram_credentials(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, ctx.api_version)
    names = [d.name for d in request.deletions] + [u.name for u in request.upsertions]
    if not authorization.cluster(ctx, Operation.ALTER):
        denied = tuple(
            build(
                mod.AlterUserScramCredentialsResult,
                user=name,
                error_code=ErrorCode.cluster_authorization_failed,
                error_message=authorization.CLUSTER_DENIED,
            )
            for name in dict.fromkeys(names)
        )
        return build(mod.AlterUserScramCredentialsResponse, throttle_time=0, results=denied)
    access = ctx.broker.core.access
    errors: dict[str, tuple[int, str]] = {}
    changes: dict[str, tuple[str, ScramCredential | None]] = {}
    duplicate = (
        ErrorCode.duplicate_resource,
        "A user credential cannot be altered twice in the same request",
    )
    for d in request.deletions:
        if d.name in errors:
            continue
        if changes.pop(d.name, None) is not None:
            errors[d.name] = duplicate
            continue
        problem = _check_scram(ctx, d.name, d.mechanism)
        user = access.users.get(d.name)
        if problem is None and (user is None or SCRAM_TYPES[d.mechanism] not in user.scram):
            problem = ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist"
        if problem is not None:
            errors[d.name] = problem
        else:
            changes[d.name] = (SCRAM_TYPES[d.mechanism], None)
    for u in request.upsertions:
        if u.name in errors:
            continue
        if changes.pop(u.name, None) is not None:
            errors[u.name] = duplicate
            continue
        problem = _check_scram(ctx, u.name, u.mechanism)
        if problem is None and u.iterations < MIN_ITERATIONS:
            problem = ErrorCode.unacceptable_credential, "Too few iterations"
        elif problem is None and u.iterations > MAX_ITERATIONS:
            problem = ErrorCode.unacceptable_credential, "Too many iterations"
        elif problem is None and not u.salt:
            # Kafka takes any salt (its clients make 64-byte ones); an empty one makes an empty
            # s= attribute, which RFC 5802 clients refuse
            problem = ErrorCode.unacceptable_credential, "Salt must not be empty"
        if problem is not None:
            errors[u.name] = problem
            continue
        mechanism = SCRAM_TYPES[u.mechanism]
        credential = scram_from_salted_password(u.salted_password, u.salt, u.iterations, mechanism)
        changes[u.name] = (mechanism, credential)
    if changes:
        access.alter_scram((name, m, c) for name, (m, c) in changes.items())
    results = [
        build(mod.AlterUserScramCredentialsResult, user=name, error_code=ErrorCode.none, error_message=None)
        for name in changes
    ] + [
        build(mod.AlterUserScramCredentialsResult, user=name, error_code=code, error_message=message)
        for name, (code, message) in errors.items()
    ]
    return build(mod.AlterUserScramCredentialsResponse, throttle_time=0, results=tuple(results))


# -- DescribeLogDirs -------------------------------------------------------------------------------


async def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_LOG_DIRS, ctx.api_version)
    if not authorization.cluster(ctx, Operation.DESCRIBE):
        return build(
            mod.DescribeLogDirsResponse,
            throttle_time=0,
            error_code=ErrorCode.cluster_authorization_failed,
            results=(),
        )
    topics = ctx.broker.topics
    wanted: dict[str, set[int] | None]
    if request.topics is None:
        wanted = {t.name: None for t in topics}
    else:
        wanted = {}
        for item in request.topics:
            known = wanted.setdefault(item.topic, set())
            if known is not None:
                known.update(item.partitions)
    described = []
    for name, partitions in wanted.items():
        topic = topics.get(name)
        if topic is None:
            continue
        indexes = range(len(topic.partitions)) if partitions is None else sorted(partitions)
        entries = tuple(
            build(
                mod.DescribeLogDirsPartition,
                partition_index=i,
                partition_size=log.size_bytes,
                offset_lag=0,
                is_future_key=False,
            )
            for i in indexes
            if (log := topic.log(i)) is not None
        )
        if entries:
            described.append(build(mod.DescribeLogDirsTopic, name=name, partitions=entries))
    directory = ctx.broker.core.logs.directory
    usage = shutil.disk_usage(directory)
    result = build(
        mod.DescribeLogDirsResult,
        error_code=ErrorCode.none,
        log_dir=str(directory),
        topics=tuple(described),
        total_bytes=usage.total,
        usable_bytes=usage.free,
    )
    return build(mod.DescribeLogDirsResponse, throttle_time=0, error_code=ErrorCode.none, results=(result,))


# -- ElectLeaders ----------------------------------------------------------------------------------


async def handle_alter_replica_log_dirs(ctx: RequestContext, request: Any) -> Any:
    """One log directory: moving a replica to it (where it is) is a no-op success, as Kafka
    answers; any other path is LOG_DIR_NOT_FOUND, a partition not here REPLICA_NOT_AVAILABLE."""
    mod = response_module(ApiKey.ALTER_REPLICA_LOG_DIRS, ctx.api_version)
    allowed = authorization.cluster(ctx, Operation.ALTER)
    directory = str(ctx.broker.core.logs.directory)
    results: dict[str, list[Any]] = {}
    for wanted in request.dirs:
        for t in wanted.topics:
            topic = ctx.broker.topics.get(t.name)
            for index in t.partitions:
                if not allowed:
                    error = ErrorCode.cluster_authorization_failed
                elif topic is None or topic.log(index) is None:
                    error = ErrorCode.replica_not_available
                elif wanted.path != directory:
                    error = ErrorCode.log_dir_not_found
                else:
                    error = ErrorCode.none
                results.setdefault(t.name, []).append(
                    build(mod.AlterReplicaLogDirPartitionResult, partition_index=index, error_code=error)
                )
    return build(
        mod.AlterReplicaLogDirsResponse,
        throttle_time=0,
        results=tuple(
            build(mod.AlterReplicaLogDirTopicResult, topic_name=name, partitions=tuple(parts))
            for name, parts in results.items()
        ),
    )


async def handle_elect_leaders(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.ELECT_LEADERS, ctx.api_version)
    election = getattr(request, "election_type", PREFERRED)
    allowed = authorization.cluster(ctx, Operation.ALTER)

    def response(code: int, results: tuple[Any, ...]) -> Any:
        return build(
            mod.ElectLeadersResponse, throttle_time=0, error_code=code, replica_election_results=results
        )

    def partition(index: int, code: int, message: str | None) -> Any:
        return build(mod.PartitionResult, partition_id=index, error_code=code, error_message=message)

    topics = ctx.broker.topics
    if request.topic_partitions is None:
        if not allowed:
            return response(ErrorCode.cluster_authorization_failed, ())
        # every partition, and those that need no election are left out, as Kafka does
        return response(
            ErrorCode.none,
            tuple(build(mod.ReplicaElectionResult, topic=t.name, partition_result=()) for t in topics),
        )
    if election not in (PREFERRED, UNCLEAN):
        return response(ErrorCode.invalid_request, ())
    results = []
    for item in request.topic_partitions:
        topic = topics.get(item.topic)
        outcome = []
        for index in item.partitions:
            if not allowed:
                outcome.append(
                    partition(index, ErrorCode.cluster_authorization_failed, authorization.CLUSTER_DENIED)
                )
            elif topic is None:
                outcome.append(
                    partition(index, ErrorCode.unknown_topic_or_partition, f"No such topic as {item.topic}")
                )
            elif topic.log(index) is None:
                outcome.append(
                    partition(
                        index,
                        ErrorCode.unknown_topic_or_partition,
                        f"No such partition as {item.topic}-{index}",
                    )
                )
            else:
                outcome.append(
                    partition(
                        index,
                        ErrorCode.election_not_needed,
                        "Leader election not needed for topic partition.",
                    )
                )
        results.append(build(mod.ReplicaElectionResult, topic=item.topic, partition_result=tuple(outcome)))
    return response(ErrorCode.cluster_authorization_failed if not allowed else ErrorCode.none, tuple(results))


# -- partition reassignments -----------------------------------------------------------------------


def _reassignment_error(ctx: RequestContext, name: str, index: int, replicas: Any) -> tuple[int, str | None]:
    topic = ctx.broker.topics.get(name)
    if topic is None:
        return ErrorCode.unknown_topic_or_partition, f"Unable to find a topic named {name}."
    if topic.log(index) is None:
        return ErrorCode.unknown_topic_or_partition, f"Unable to find partition {name}:{index}."
    if replicas is None:
        return ErrorCode.no_reassignment_in_progress, "No partition reassignment is in progress."
    if not replicas:
        return (
            ErrorCode.invalid_replica_assignment,
            "The manual partition assignment includes an empty replica list.",
        )
    node = ctx.broker.node_id
    previous = None
    for broker_id in sorted(replicas):
        if broker_id != node:
            return (
                ErrorCode.invalid_replica_assignment,
                f"The manual partition assignment includes broker {broker_id}, "
                "but no such broker is registered.",
            )
        if broker_id == previous:
            return (
                ErrorCode.invalid_replica_assignment,
                f"The manual partition assignment includes the broker {broker_id} more than once.",
            )
        previous = broker_id
    return ErrorCode.none, None  # replicas [0]: already so, nothing moves


async def handle_alter_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.ALTER_PARTITION_REASSIGNMENTS, ctx.api_version)
    if not authorization.cluster(ctx, Operation.ALTER):
        return build(
            mod.AlterPartitionReassignmentsResponse,
            throttle_time=0,
            error_code=ErrorCode.cluster_authorization_failed,
            error_message=authorization.CLUSTER_DENIED,
            responses=(),
        )
    responses = []
    for t in request.topics:
        partitions = []
        for p in t.partitions:
            code, message = _reassignment_error(ctx, t.name, p.partition_index, p.replicas)
            partitions.append(
                build(
                    mod.ReassignablePartitionResponse,
                    partition_index=p.partition_index,
                    error_code=code,
                    error_message=message,
                )
            )
        responses.append(build(mod.ReassignableTopicResponse, name=t.name, partitions=tuple(partitions)))
    return build(
        mod.AlterPartitionReassignmentsResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        error_message=None,
        responses=tuple(responses),
    )


async def handle_list_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.LIST_PARTITION_REASSIGNMENTS, ctx.api_version)
    allowed = authorization.cluster(ctx, Operation.DESCRIBE)
    return build(
        mod.ListPartitionReassignmentsResponse,
        throttle_time=0,
        error_code=ErrorCode.none if allowed else ErrorCode.cluster_authorization_failed,
        error_message=None if allowed else authorization.CLUSTER_DENIED,
        topics=(),  # none is ever in progress
    )


# -- DescribeQuorum --------------------------------------------------------------------------------


async def handle_describe_quorum(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_QUORUM, ctx.api_version)

    def failed(code: int, message: str) -> Any:
        return build(mod.DescribeQuorumResponse, error_code=code, error_message=message, topics=(), nodes=())

    if not authorization.cluster(ctx, Operation.DESCRIBE):
        return failed(ErrorCode.cluster_authorization_failed, authorization.CLUSTER_DENIED)
    asked = [(t.topic_name, p.partition_index) for t in request.topics for p in t.partitions]
    if asked != [(METADATA_TOPIC, 0)]:
        return failed(ErrorCode.unknown_topic_or_partition, f"the quorum is {METADATA_TOPIC}-0")
    node = ctx.broker.node_id
    now = int(time.time() * 1000)
    voter = build(
        mod.ReplicaState,
        replica_id=node,
        replica_directory_id=uuid.UUID(int=0),
        log_end_offset=0,
        last_fetch_timestamp=now,
        last_caught_up_timestamp=now,
    )
    partition = build(
        mod.PartitionData,
        partition_index=0,
        error_code=ErrorCode.none,
        error_message=None,
        leader_id=node,
        leader_epoch=1,
        high_watermark=0,
        current_voters=(voter,),
        observers=(),
    )
    nodes: tuple[Any, ...] = ()
    if hasattr(mod, "Node"):
        listener = build(
            mod.Listener,
            name=ctx.listener.name,
            host=ctx.listener.advertised_host,
            port=ctx.listener.advertised_port,
        )
        nodes = (build(mod.Node, node_id=node, listeners=(listener,)),)
    return build(
        mod.DescribeQuorumResponse,
        error_code=ErrorCode.none,
        error_message=None,
        topics=(build(mod.TopicData, topic_name=METADATA_TOPIC, partitions=(partition,)),),
        nodes=nodes,
    )


APIS = [
    Api(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, handle_describe_user_scram_credentials),
    Api(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, 0, handle_alter_user_scram_credentials),
    Api(ApiKey.ALTER_REPLICA_LOG_DIRS, 1, 2, handle_alter_replica_log_dirs),
    Api(ApiKey.DESCRIBE_LOG_DIRS, 1, 4, handle_describe_log_dirs),
    Api(ApiKey.ELECT_LEADERS, 0, 2, handle_elect_leaders),
    Api(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, 0, handle_alter_partition_reassignments),
    Api(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, 0, handle_list_partition_reassignments),
    Api(ApiKey.DESCRIBE_QUORUM, 0, 2, handle_describe_quorum),
]
