"""Classic-protocol members of a consumer group (KIP-848 mixed groups), protocol-free: their
JoinGroup, SyncGroup, Heartbeat and LeaveGroup, as Kafka's GroupMetadataManager serves them.

* **Join** answers at once (no waiting for the others): the member is created or updated
  with the subscription its metadata holds, the group epoch is bumped if that changed, the
  target assignment computed and the member reconciled against the partitions its metadata
  says it owns.  It is told it is a follower (no leader: the broker assigns), and its
  generation is its member epoch.  It must sync within its rebalance timeout.
* **Sync** hands out the member's current partitions (in the version of its subscription);
  REBALANCE_IN_PROGRESS if the group epoch moved on meanwhile (unless it still has
  partitions to give up: it first gets the smaller assignment).
* **Heartbeat** keeps it alive (its own session timeout) and answers REBALANCE_IN_PROGRESS
  when it must rejoin: the group epoch moved on, it has partitions to revoke, or the
  partitions it waits for are free.  It must then rejoin within its rebalance timeout.
* **Leave** removes it (the group epoch is bumped).

A member id of a consumer-protocol member is UNKNOWN_MEMBER_ID here; a generation other than
the member epoch ILLEGAL_GENERATION.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from jackalope.core.groups.consumer_group import (
    ClassicJoinRequest,
    ClassicMetadata,
    ConsumerMember,
    HeartbeatError,
    MemberState,
)
from jackalope.core.groups.consumer_protocol import ConsumerGroups
from jackalope.core.groups.group import Group, now_ms
from jackalope.core.groups.migration import CONSUMER_PROTOCOL_TYPE
from jackalope.core.groups.types import GroupError, JoinResult, SyncResult

log = logging.getLogger(__name__)


class ClassicMembers:
    """The classic members of the consumer groups of ``consumer``."""

    def __init__(self, consumer: ConsumerGroups) -> None:
        self.consumer = consumer

    def join(
        self,
        group: Group,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_member_id: bool,
    ) -> JoinResult:
        group_id = group.group_id
        consumer = group.consumer
        assert consumer is not None
        new = member_id == ""
        if new:
            member_id = f"{client_id}-{uuid.uuid4()}"
        if (
            member_id not in consumer.members
            and (instance_id is None or instance_id not in consumer.static_members)
            and len(consumer.members) >= self.consumer.max_size
        ):
            return JoinResult(GroupError.GROUP_MAX_SIZE_REACHED, "")
        if not consumer.supports_classic_protocols(protocol_type, [name for name, _ in protocols]):
            return JoinResult(GroupError.INCONSISTENT_GROUP_PROTOCOL, "" if new else member_id)
        if new and instance_id is None and require_known_member_id:
            return JoinResult(GroupError.MEMBER_ID_REQUIRED, member_id)
        codec = self.consumer.classic_codec
        subscription = codec.subscription(protocols[0][1]) if codec is not None else None
        if subscription is None:
            return JoinResult(GroupError.INCONSISTENT_GROUP_PROTOCOL, "" if new else member_id)
        topics = self.consumer.topics()
        request = ClassicJoinRequest(
            member_id=member_id,
            instance_id=instance_id,
            rebalance_timeout_ms=rebalance_timeout_ms,
            client_id=client_id,
            client_host=client_host,
            subscribed_topic_names=subscription.topics,
            owned={t: ps for t, ps in subscription.owned.items() if t in topics and ps},
            classic=ClassicMetadata(session_timeout_ms, tuple(protocols)),
            rack_id=subscription.rack_id,
            new=new,
        )
        current_id = consumer.static_members.get(instance_id) if instance_id is not None else None
        current = consumer.members.get(current_id) if current_id is not None else None
        was_consumer = current is not None and current.classic is None
        try:
            member, replaced = consumer.classic_join(
                request, topics, self.consumer.assignors, self.consumer.default_assignor
            )
        except HeartbeatError as exc:
            return JoinResult(exc.error, member_id)
        for old_id in replaced:
            self.consumer.cancel(group_id, old_id)
        result = JoinResult(
            None,
            member_id=member_id,
            generation_id=member.epoch,
            protocol_type=CONSUMER_PROTOCOL_TYPE,
            protocol_name=request.classic.protocol_name,
            leader_id="",
        )
        if replaced and self.consumer.downgrade_replaced(group, replaced[0], was_consumer):
            return result  # now a classic group: its timers are the coordinator's
        self.consumer.cancel_join_timeout(group_id, member_id)
        self.consumer.schedule_session(group_id, member_id)
        self.consumer.schedule_sync_timeout(group_id, member_id, rebalance_timeout_ms)
        self.consumer.store(group)
        log.info(
            "classic member %s joined consumer group %s (epoch %d, state %s)",
            member_id,
            group_id,
            member.epoch,
            member.state.value,
        )
        return result

    def sync(
        self,
        group: Group,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
    ) -> SyncResult:
        found = self._member(group, member_id, instance_id)
        if isinstance(found, GroupError):
            return SyncResult(found)
        member = found
        assert member.classic is not None and group.consumer is not None
        if generation_id != member.epoch:
            return SyncResult(GroupError.ILLEGAL_GENERATION)
        if (protocol_type is not None and protocol_type != CONSUMER_PROTOCOL_TYPE) or (
            protocol_name is not None and protocol_name != member.classic.protocol_name
        ):
            return SyncResult(GroupError.INCONSISTENT_GROUP_PROTOCOL)
        if group.consumer.group_epoch > member.epoch and member.state is not MemberState.UNREVOKED_PARTITIONS:
            self.consumer.schedule_join_timeout(group.group_id, member.member_id, member.rebalance_timeout_ms)
            return SyncResult(GroupError.REBALANCE_IN_PROGRESS)
        codec = self.consumer.classic_codec
        assert codec is not None
        self.consumer.cancel_sync_timeout(group.group_id, member.member_id)
        self.consumer.schedule_session(group.group_id, member.member_id)
        return SyncResult(
            None,
            CONSUMER_PROTOCOL_TYPE,
            member.classic.protocol_name,
            codec.encode_assignment(member.assigned, member.classic.metadata),
        )

    def heartbeat(
        self, group: Group, generation_id: int, member_id: str, instance_id: str | None
    ) -> GroupError | None:
        found = self._member(group, member_id, instance_id)
        if isinstance(found, GroupError):
            return found
        member = found
        assert group.consumer is not None
        if generation_id != member.epoch:
            return GroupError.ILLEGAL_GENERATION
        self.consumer.schedule_session(group.group_id, member.member_id)
        if group.consumer.classic_must_rejoin(member):
            self.consumer.schedule_join_timeout(group.group_id, member.member_id, member.rebalance_timeout_ms)
            return GroupError.REBALANCE_IN_PROGRESS
        return None

    def leave(self, group: Group, members: Iterable[tuple[str, str | None]]) -> list[GroupError | None]:
        consumer = group.consumer
        assert consumer is not None
        errors: list[GroupError | None] = []
        for member_id, instance_id in members:
            found = self._member(group, member_id, instance_id, admin=member_id == "")
            if isinstance(found, GroupError):
                errors.append(found)
                continue
            consumer.remove(found.member_id)
            self.consumer.cancel(group.group_id, found.member_id)
            log.info("classic member %s left consumer group %s", found.member_id, group.group_id)
            errors.append(None)
        if not consumer.members:
            group.state_timestamp = now_ms()
        self.consumer.store(group)
        return errors

    @staticmethod
    def _member(
        group: Group, member_id: str, instance_id: str | None, *, admin: bool = False
    ) -> ConsumerMember | GroupError:
        """Kafka's validateConsumerGroupMember, and the member must use the classic protocol."""
        consumer = group.consumer
        assert consumer is not None
        if instance_id is None:
            member = consumer.members.get(member_id)
            if member is None:
                return GroupError.UNKNOWN_MEMBER_ID
        else:
            current = consumer.static_members.get(instance_id)
            member = consumer.members.get(current) if current is not None else None
            if member is None:
                return GroupError.UNKNOWN_MEMBER_ID
            if not admin and member.member_id != member_id:
                return GroupError.FENCED_INSTANCE_ID
        if member.classic is None:
            return GroupError.UNKNOWN_MEMBER_ID
        return member
