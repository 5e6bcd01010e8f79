"""The consumer group protocol (KIP-848) on the broker: the groups' timers and persistence
around the state machine of :mod:`.consumer_group`.

* **Type.**  A group is classic or consumer.  The first ConsumerGroupHeartbeat makes a new
  group, or an empty classic one, a consumer group; a classic group with members answers
  GROUP_ID_NOT_FOUND ("not a consumer group").  A classic JoinGroup on a consumer group with
  members is INCONSISTENT_GROUP_PROTOCOL; an empty consumer group becomes classic again.
* **Session timeout.**  Every heartbeat restarts the member's session timer
  (``session_timeout_ms``, group.consumer.session.timeout.ms); when it fires the member is
  fenced (removed, its partitions freed, the group epoch bumped).  A static member that left
  with epoch -2 keeps its partitions until then.
* **Rebalance timeout.**  A member asked to revoke partitions must do so within its
  rebalance timeout (the consumer's ``max.poll.interval.ms``) or it is fenced.
* **Persistence.**  After a heartbeat that changed the group, its snapshot (epochs, members,
  their subscriptions and assignments, the target assignment) is appended to the internal log
  (``["consumer_group", id]`` records), without waiting for the fsync; on load it comes back,
  each member with a fresh session timer, so clients carry on after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence

from jackalope.core.groups import store
from jackalope.core.groups.assignors import ASSIGNORS, Assignor
from jackalope.core.groups.consumer_group import (
    JOIN_EPOCH,
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    ConsumerGroup,
    HeartbeatRequest,
    HeartbeatResult,
    MemberState,
    validate_request,
)
from jackalope.core.groups.group import Group, Groups, now_ms
from jackalope.core.groups.offsets_log import OffsetsLog
from jackalope.core.groups.types import GroupError, GroupState

log = logging.getLogger(__name__)

TimerKey = tuple[str, str]  # (group id, member id)


class ConsumerGroups:
    """The consumer-protocol side of the coordinator's groups."""

    def __init__(
        self,
        groups: Groups,
        offsets_log: OffsetsLog,
        *,
        topics: Callable[[], Mapping[str, int]],
        heartbeat_interval_ms: int = 5000,
        session_timeout_ms: int = 45000,
        assignors: Sequence[str] = ("uniform", "range"),
        max_size: int = (1 << 31) - 1,
    ) -> None:
        unknown = [name for name in assignors if name not in ASSIGNORS]
        if unknown or not assignors:
            raise ValueError(f"unknown consumer group assignors {unknown}; known: {sorted(ASSIGNORS)}")
        self.groups = groups
        self.offsets_log = offsets_log
        self.topics = topics
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.session_timeout_ms = session_timeout_ms
        # group configs (consumer.session.timeout.ms, consumer.heartbeat.interval.ms): group id ->
        # (session timeout, heartbeat interval) in ms; None: the broker-wide values for every group
        self.group_timeouts: Callable[[str], tuple[int, int]] | None = None
        self.assignors: dict[str, Assignor] = {name: ASSIGNORS[name] for name in assignors}
        self.default_assignor = assignors[0]
        self.max_size = max_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: dict[TimerKey, asyncio.TimerHandle] = {}
        self._rebalances: dict[TimerKey, tuple[int, asyncio.TimerHandle]] = {}
        self._stored: dict[str, bytes] = {}  # group id -> the last snapshot written

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the timers of the groups replayed from the log."""
        self._loop = loop
        for group in self.groups.values():
            if group.consumer is None:
                continue
            self._stored[group.group_id] = _snapshot_bytes(group.consumer)
            for member in group.consumer.members.values():
                self._schedule_session(group.group_id, member.member_id)
                if member.state is MemberState.UNREVOKED_PARTITIONS:
                    self._schedule_rebalance(
                        group.group_id, member.member_id, member.epoch, member.rebalance_timeout_ms
                    )

    def close(self) -> None:
        for handle in self._sessions.values():
            handle.cancel()
        for _, handle in self._rebalances.values():
            handle.cancel()
        self._sessions.clear()
        self._rebalances.clear()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("GroupCoordinator.load() has not run")
        return self._loop

    # -- heartbeat -----------------------------------------------------------------------------

    def heartbeat(self, group_id: str, req: HeartbeatRequest) -> HeartbeatResult:
        """ConsumerGroupHeartbeat (join, heartbeat, leave) of ``group_id``."""
        if not group_id:
            return HeartbeatResult(
                GroupError.INVALID_REQUEST, "GroupId can't be empty.", req.member_id, req.member_epoch
            )
        invalid = validate_request(req, self.assignors)
        if invalid is not None:
            return HeartbeatResult(invalid.error, invalid.message, req.member_id, req.member_epoch)
        group = self.groups.get(group_id)
        if group is not None and group.is_(GroupState.DEAD):
            return HeartbeatResult(
                GroupError.COORDINATOR_NOT_AVAILABLE, None, req.member_id, req.member_epoch
            )
        consumer = group.consumer if group is not None else None
        if consumer is None:
            if group is not None and not group.is_empty:
                return HeartbeatResult(
                    GroupError.GROUP_ID_NOT_FOUND,
                    f"Group {group_id} is not a consumer group",
                    req.member_id,
                    req.member_epoch,
                )
            if req.member_epoch != JOIN_EPOCH:
                return HeartbeatResult(
                    GroupError.UNKNOWN_MEMBER_ID,
                    f"member {req.member_id} is not in group {group_id}",
                    req.member_id,
                    req.member_epoch,
                )
            group = self.groups.get_or_create(group_id)
            consumer = group.consumer = ConsumerGroup(group_id, assignor_name=self.default_assignor)
            group.protocol_type = "consumer"
            group.protocol_name = None
            log.info("group %s is a consumer group (KIP-848)", group_id)
        assert group is not None
        if (
            req.member_epoch == JOIN_EPOCH
            and len(consumer.members) >= self.max_size
            and req.member_id not in consumer.members
            and (req.instance_id is None or req.instance_id not in consumer.static_members)
        ):
            return HeartbeatResult(
                GroupError.GROUP_MAX_SIZE_REACHED,
                f"the consumer group has reached its maximum capacity of {self.max_size} members",
                req.member_id,
                req.member_epoch,
            )
        had_members = bool(consumer.members)
        result, replaced = consumer.heartbeat(req, self.topics(), self.assignors, self.default_assignor)
        for old_id in replaced:
            self._cancel(group_id, old_id)
        if result.error is None:
            if req.member_epoch == LEAVE_EPOCH or (
                req.member_epoch == STATIC_LEAVE_EPOCH and result.member_id not in consumer.members
            ):
                self._cancel(group_id, result.member_id)
                log.info("member %s left consumer group %s", result.member_id, group_id)
            elif req.member_epoch >= 0:
                self._after_heartbeat(group, result.member_id)
        if had_members and not consumer.members:
            group.state_timestamp = now_ms()
        self._store(group)
        return result

    def _after_heartbeat(self, group: Group, member_id: str) -> None:
        assert group.consumer is not None
        member = group.consumer.members[member_id]
        self._schedule_session(group.group_id, member_id)
        key = (group.group_id, member_id)
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            current = self._rebalances.get(key)
            if current is None or current[0] != member.epoch:
                self._schedule_rebalance(group.group_id, member_id, member.epoch, member.rebalance_timeout_ms)
        else:
            self._cancel_rebalance(key)

    # -- timers --------------------------------------------------------------------------------

    def _schedule_session(self, group_id: str, member_id: str) -> None:
        key = (group_id, member_id)
        old = self._sessions.pop(key, None)
        if old is not None:
            old.cancel()
        timeout = self.timeouts(group_id)[0]
        self._sessions[key] = self.loop.call_later(timeout / 1000, self._session_expired, key)

    def timeouts(self, group_id: str) -> tuple[int, int]:
        """The group's (session timeout, heartbeat interval), its group configs' if it has any."""
        if self.group_timeouts is None:
            return self.session_timeout_ms, self.heartbeat_interval_ms
        return self.group_timeouts(group_id)

    def _schedule_rebalance(self, group_id: str, member_id: str, epoch: int, timeout_ms: int) -> None:
        key = (group_id, member_id)
        self._cancel_rebalance(key)
        handle = self.loop.call_later(max(timeout_ms, 0) / 1000, self._rebalance_expired, key, epoch)
        self._rebalances[key] = (epoch, handle)

    def _cancel_rebalance(self, key: TimerKey) -> None:
        current = self._rebalances.pop(key, None)
        if current is not None:
            current[1].cancel()

    def _cancel(self, group_id: str, member_id: str) -> None:
        key = (group_id, member_id)
        handle = self._sessions.pop(key, None)
        if handle is not None:
            handle.cancel()
        self._cancel_rebalance(key)

    def _session_expired(self, key: TimerKey) -> None:
        self._sessions.pop(key, None)
        self._fence(key, None, "its session timed out")

    def _rebalance_expired(self, key: TimerKey, epoch: int) -> None:
        current = self._rebalances.get(key)
        if current is not None and current[0] == epoch:
            del self._rebalances[key]
        self._fence(
            key, epoch, f"it did not revoke its partitions within the rebalance timeout (epoch {epoch})"
        )

    def _fence(self, key: TimerKey, epoch: int | None, why: str) -> None:
        group_id, member_id = key
        group = self.groups.get(group_id)
        if group is None or group.consumer is None:
            return
        if group.consumer.member_timed_out(member_id, epoch):
            log.info("member %s of consumer group %s fenced: %s", member_id, group_id, why)
            self._cancel(group_id, member_id)
            if not group.consumer.members:
                group.state_timestamp = now_ms()
            self._store(group)

    # -- persistence and conversion ------------------------------------------------------------

    def _store(self, group: Group) -> None:
        if group.consumer is None:
            return
        data = _snapshot_bytes(group.consumer)
        if self._stored.get(group.group_id) == data:
            return
        self._stored[group.group_id] = data
        record = store.consumer_group_record(group.group_id, group.consumer.to_json())
        self.offsets_log.write_later([record], f"storing consumer group {group.group_id}")

    def to_classic(self, group: Group) -> None:
        """An empty consumer group becomes classic (a classic member joins it)."""
        if group.consumer is None:
            return
        log.info("empty consumer group %s becomes a classic group", group.group_id)
        group.consumer = None
        group.protocol_type = None
        self._stored.pop(group.group_id, None)
        self.offsets_log.write_later(
            [store.consumer_group_tombstone(group.group_id)], f"converting group {group.group_id}"
        )

    def forget(self, group_id: str) -> None:
        self._stored.pop(group_id, None)


def _snapshot_bytes(group: ConsumerGroup) -> bytes:
    return json.dumps(group.to_json(), sort_keys=True).encode()
