"""The consumer group protocol (KIP-848) on the broker: the groups' timers and persistence
around the state machine of :mod:`.consumer_group`.

* **Type.**  A group is classic or consumer.  The first ConsumerGroupHeartbeat makes a new
  group, or an empty classic one, a consumer group; a classic group with members is upgraded
  (:mod:`.migration`) if the migration policy allows it, else answers GROUP_ID_NOT_FOUND
  ("not a consumer group").  Classic members of a consumer group are served by
  :mod:`.classic_members`; when the last consumer-protocol member leaves a group of classic
  members it is downgraded back (the coordinator's ``on_downgrade`` rebalances it).  A
  classic JoinGroup on an empty consumer group makes it classic again.
* **Session timeout.**  Every heartbeat restarts the member's session timer
  (``session_timeout_ms``, group.consumer.session.timeout.ms; a classic member's own session
  timeout); when it fires the member is
  fenced (removed, its partitions freed, the group epoch bumped).  A static member that left
  with epoch -2 keeps its partitions until then.
* **Rebalance timeout.**  A member asked to revoke partitions must do so within its
  rebalance timeout (the consumer's ``max.poll.interval.ms``) or it is fenced; a classic
  member told to rejoin must join within it, and sync within it after joining.
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
from jackalope.core.groups.migration import (
    ClassicCodec,
    MigrationPolicy,
    can_downgrade,
    can_upgrade,
    downgrade,
    upgrade,
)
from jackalope.core.groups.offsets_log import OffsetsLog, snapshot
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
        migration_policy: MigrationPolicy = MigrationPolicy.BIDIRECTIONAL,
        classic_codec: ClassicCodec | None = None,
        classic_max_size: int = (1 << 31) - 1,
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
        self.migration_policy = migration_policy
        self.classic_codec = classic_codec  # without one, no migration
        self.classic_max_size = classic_max_size
        # The coordinator's: rebalance a group just downgraded to classic.
        # (the group, whether to rebalance: not when a static member replaced the last one)
        self.on_downgrade: Callable[[Group, bool], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: dict[TimerKey, asyncio.TimerHandle] = {}
        self._rebalances: dict[TimerKey, tuple[int, asyncio.TimerHandle]] = {}
        self._joins: dict[TimerKey, asyncio.TimerHandle] = {}  # classic members told to rejoin
        self._syncs: dict[TimerKey, asyncio.TimerHandle] = {}  # classic members yet to sync
        self._stored: dict[str, bytes] = {}  # group id -> the last snapshot written

    # -- lifecycle -----------------------------------------------------------------------------

    def store(self, group: Group) -> None:
        """Append the group's snapshot if it changed (after a classic member's join or leave)."""
        self._store(group)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the timers of the groups replayed from the log."""
        self._loop = loop
        for group in self.groups.values():
            if group.consumer is None:
                continue
            self._stored[group.group_id] = _snapshot_bytes(group.consumer)
            for member in group.consumer.members.values():
                self.schedule_session(group.group_id, member.member_id)
                if member.state is MemberState.UNREVOKED_PARTITIONS:
                    self._schedule_rebalance(
                        group.group_id, member.member_id, member.epoch, member.rebalance_timeout_ms
                    )

    def close(self) -> None:
        for handle in self._sessions.values():
            handle.cancel()
        for _, handle in self._rebalances.values():
            handle.cancel()
        for handle in (*self._joins.values(), *self._syncs.values()):
            handle.cancel()
        self._sessions.clear()
        self._rebalances.clear()
        self._joins.clear()
        self._syncs.clear()

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
        if consumer is None and group is not None and not group.is_empty:
            if req.member_epoch != JOIN_EPOCH:
                return HeartbeatResult(
                    GroupError.GROUP_ID_NOT_FOUND,
                    f"Group {group_id} is not a consumer group",
                    req.member_id,
                    req.member_epoch,
                )
            why = self._upgrade(group)
            if why is not None:
                return HeartbeatResult(
                    GroupError.GROUP_ID_NOT_FOUND,
                    f"Group {group_id} is not a consumer group: {why}",
                    req.member_id,
                    req.member_epoch,
                )
            consumer = group.consumer
        if consumer is None:
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
        if req.member_epoch == LEAVE_EPOCH:
            leaving = consumer.static_members.get(req.instance_id or "", req.member_id)
            if leaving == req.member_id and self._maybe_downgrade(group, leaving):
                log.info("member %s left consumer group %s", leaving, group_id)
                return HeartbeatResult(None, None, req.member_id, req.member_epoch)
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

    def schedule_session(self, group_id: str, member_id: str) -> None:
        """Restart a member's session timer; a classic member's is its own session timeout."""
        group = self.groups.get(group_id)
        member = group.consumer.members.get(member_id) if group and group.consumer else None
        if member is None or member.classic is None:
            self._schedule_session(group_id, member_id)
            return
        key = (group_id, member_id)
        old = self._sessions.pop(key, None)
        if old is not None:
            old.cancel()
        timeout_s = member.classic.session_timeout_ms / 1000
        self._sessions[key] = self.loop.call_later(timeout_s, self._session_expired, key)

    def schedule_join_timeout(self, group_id: str, member_id: str, timeout_ms: int) -> None:
        """A classic member told to rejoin must do so within ``timeout_ms`` (unless already told)."""
        key = (group_id, member_id)
        if key not in self._joins:
            self._joins[key] = self.loop.call_later(
                max(timeout_ms, 0) / 1000, self._classic_expired, self._joins, key, "join"
            )

    def schedule_sync_timeout(self, group_id: str, member_id: str, timeout_ms: int) -> None:
        """A classic member that joined must sync within ``timeout_ms``."""
        key = (group_id, member_id)
        self._cancel_in(self._syncs, key)
        self._syncs[key] = self.loop.call_later(
            max(timeout_ms, 0) / 1000, self._classic_expired, self._syncs, key, "sync"
        )

    def cancel_join_timeout(self, group_id: str, member_id: str) -> None:
        self._cancel_in(self._joins, (group_id, member_id))

    def cancel_sync_timeout(self, group_id: str, member_id: str) -> None:
        self._cancel_in(self._syncs, (group_id, member_id))

    @staticmethod
    def _cancel_in(timers: dict[TimerKey, asyncio.TimerHandle], key: TimerKey) -> None:
        handle = timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _classic_expired(self, timers: dict[TimerKey, asyncio.TimerHandle], key: TimerKey, what: str) -> None:
        timers.pop(key, None)
        self._fence(key, None, f"the classic member did not {what} within its rebalance timeout")

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
        self._cancel_in(self._joins, key)
        self._cancel_in(self._syncs, key)

    def cancel(self, group_id: str, member_id: str) -> None:
        """Stop every timer of the member (it left)."""
        self._cancel(group_id, member_id)

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
        member = group.consumer.members.get(member_id)
        unrevoked = member is not None and member.state is MemberState.UNREVOKED_PARTITIONS
        if (
            member is not None
            and (epoch is None or (member.epoch == epoch and unrevoked))
            and self._maybe_downgrade(group, member_id)
        ):
            log.info("member %s of consumer group %s fenced: %s", member_id, group_id, why)
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

    def _upgrade(self, group: Group) -> str | None:
        """Make the classic ``group`` (with members) a consumer group; why not, if it may not."""
        why = can_upgrade(group, self.migration_policy, self.max_size)
        if why is None and self.classic_codec is None:
            why = "online upgrade is not available"
        if why is not None:
            log.info("classic group %s not upgraded to a consumer group: %s", group.group_id, why)
            return why
        assert self.classic_codec is not None
        try:
            consumer = upgrade(group, self.classic_codec, self.topics())
        except ValueError as exc:
            log.warning("classic group %s not upgraded to a consumer group: %s", group.group_id, exc)
            return str(exc)
        group.consumer = consumer
        log.info(
            "classic group %s upgraded to a consumer group (KIP-848) with %d members",
            group.group_id,
            len(consumer.members),
        )
        self.offsets_log.write_later([snapshot(group)], f"upgrading group {group.group_id}")
        for member_id in consumer.members:
            self.schedule_session(group.group_id, member_id)
        return None

    def _maybe_downgrade(self, group: Group, leaving_id: str) -> bool:
        """``leaving_id`` leaves or is fenced: if it was the last consumer-protocol member of a
        group of classic members, make the group classic (without it) and rebalance it."""
        consumer = group.consumer
        if (
            consumer is None
            or self.classic_codec is None
            or self.on_downgrade is None
            or not can_downgrade(consumer, leaving_id, self.migration_policy, self.classic_max_size)
        ):
            return False
        generation = consumer.group_epoch
        consumer.remove(leaving_id)
        for member_id in [leaving_id, *consumer.members]:
            self._cancel(group.group_id, member_id)
        self.to_classic(group, generation)
        return True

    def downgrade_replaced(self, group: Group, replaced_id: str, was_consumer: bool) -> bool:
        """A classic static member just replaced ``replaced_id``: if that was the last
        consumer-protocol member, the group becomes classic at once, without a rebalance
        (Kafka's validateOnlineDowngradeWithReplacedMemberId)."""
        consumer = group.consumer
        if (
            consumer is None
            or not was_consumer
            or self.classic_codec is None
            or self.on_downgrade is None
            or not self.migration_policy.downgrades
            or any(m.classic is None for m in consumer.members.values())
            or len(consumer.members) > self.classic_max_size
        ):
            return False
        log.info("static member %s replaced by a classic member in group %s", replaced_id, group.group_id)
        for member_id in consumer.members:
            self._cancel(group.group_id, member_id)
        self.to_classic(group, consumer.group_epoch, rebalance=False)
        return True

    def to_classic(self, group: Group, generation: int | None = None, *, rebalance: bool = True) -> None:
        """An empty consumer group becomes classic (a classic member joins it); or, with
        ``generation``, one of classic members only is downgraded (Kafka's online downgrade)."""
        if group.consumer is None:
            return
        self._stored.pop(group.group_id, None)
        records = [store.consumer_group_tombstone(group.group_id)]
        if generation is None or not group.consumer.members:
            log.info("empty consumer group %s becomes a classic group", group.group_id)
            group.consumer = None
            group.protocol_type = None
        else:
            assert self.classic_codec is not None and self.on_downgrade is not None
            downgrade(group, self.classic_codec, generation)
            log.info(
                "consumer group %s downgraded to a classic group with %d members",
                group.group_id,
                len(group.members),
            )
            records.append(snapshot(group))
        self.offsets_log.write_later(records, f"converting group {group.group_id}")
        if generation is not None and group.members and self.on_downgrade is not None:
            self.on_downgrade(group, rebalance)

    def forget(self, group_id: str) -> None:
        self._stored.pop(group_id, None)


def _snapshot_bytes(group: ConsumerGroup) -> bytes:
    return json.dumps(group.to_json(), sort_keys=True).encode()
