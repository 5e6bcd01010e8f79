"""The consumer-group coordinator: Kafka's classic group protocol, without the protocol.

A group moves through Kafka's states::

    Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
      ^                   ^      |                                   | leader's sync
      |                   |      +--(no members left)--> Empty       v
      +--(last leaves)----+------------(join, leave, expiry)----- Stable
    Empty --delete / expiry of its offsets--> Dead (forgotten)

* **Join.**  A rebalance starts when a member joins, changes its protocols, leaves or expires.
  It completes when every known member has rejoined (and no member id handed out with
  ``MEMBER_ID_REQUIRED`` is outstanding), or when the rebalance timeout (the largest of the
  members') runs out; dynamic members that did not rejoin are then removed.  A group that
  starts from Empty waits ``initial_rebalance_delay_ms`` instead, extended while new members
  keep arriving (group.initial.rebalance.delay.ms).  Completion bumps the generation, picks
  the protocol every member supports that most prefer, and answers every pending join; the
  leader's answer lists the members and their metadata.
* **Sync.**  Followers wait for the leader's SyncGroup; its assignments are stored in the
  internal log (so a restart resumes the stable group) and then handed out.  Members that do
  not sync within the rebalance timeout are removed and the group rebalances again.
* **Liveness.**  Each member has a session timer, reset by heartbeats (and joins, syncs and
  commits); when it fires the member is removed.  A member waiting for a join or sync answer
  is kept alive while it waits; a brand-new member gets ``new_member_join_timeout_ms``.
* **Static members** (``group_instance_id``) keep their identity across restarts: a rejoin
  with an unknown member id replaces the old member id (the old one is fenced with
  ``FENCED_INSTANCE_ID``) and, in a Stable group whose protocol would not change, does not
  rebalance.  They are not removed by a rebalance timeout, only by their session timeout or
  a LeaveGroup.

This module is the membership state machine and the entry point: every public call checks
here that the coordinator is loaded and open.  Committed offsets (and deleting and expiring
groups with them) are :mod:`.offsets`' business, reading and writing the internal log
:mod:`.offsets_log`'s, the format of its records :mod:`.store`'s.

Everything runs on the broker's event loop; timers are ``loop.call_later`` handles.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Final, Protocol

from jackalope.core.groups.classic_members import ClassicMembers
from jackalope.core.groups.consumer_group import ConsumerGroup, HeartbeatRequest, HeartbeatResult
from jackalope.core.groups.consumer_protocol import ConsumerGroups
from jackalope.core.groups.group import Group, Groups, Member
from jackalope.core.groups.migration import ClassicCodec, MigrationPolicy
from jackalope.core.groups.offsets import OffsetManager
from jackalope.core.groups.offsets_log import OffsetsLog
from jackalope.core.groups.types import (
    GroupDescription,
    GroupError,
    GroupListing,
    GroupState,
    JoinResult,
    OffsetAndMetadata,
    SyncResult,
    TopicPartition,
)
from jackalope.storage import LogManager

log = logging.getLogger(__name__)

DAY_MS: Final = 24 * 3600 * 1000

Empty: Final = GroupState.EMPTY
Preparing: Final = GroupState.PREPARING_REBALANCE
Completing: Final = GroupState.COMPLETING_REBALANCE
Stable: Final = GroupState.STABLE
Dead: Final = GroupState.DEAD


class OtherGroups(Protocol):
    """Groups of another kind sharing the group-id namespace: share groups (KIP-932)."""

    def exists(self, group_id: str) -> bool: ...

    def listings(self) -> list[GroupListing]: ...

    def describe(self, group_id: str) -> GroupDescription | None: ...

    def delete_groups(self, group_ids: Iterable[str]) -> dict[str, GroupError | None]: ...


class GroupCoordinator:
    """All consumer groups of one broker and their committed offsets."""

    def __init__(
        self,
        logs: LogManager,
        *,
        min_session_timeout_ms: int = 6000,
        max_session_timeout_ms: int = 1_800_000,
        initial_rebalance_delay_ms: int = 3000,
        new_member_join_timeout_ms: int = 300_000,
        group_max_size: int = (1 << 31) - 1,
        max_metadata_bytes: int = 4096,
        offsets_retention_ms: int = 7 * DAY_MS,
        offsets_retention_check_interval_ms: int = 600_000,
        offsets_log_name: str = "__consumer_offsets",
        partition_exists: Callable[[str, int], bool] | None = None,
        topic_partitions: Callable[[], Mapping[str, int]] | None = None,
        consumer_heartbeat_interval_ms: int = 5000,
        consumer_session_timeout_ms: int = 45000,
        consumer_assignors: tuple[str, ...] = ("uniform", "range"),
        consumer_migration_policy: MigrationPolicy | str = MigrationPolicy.BIDIRECTIONAL,
        classic_codec: ClassicCodec | None = None,
    ) -> None:
        self.logs = logs
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.new_member_join_timeout_ms = new_member_join_timeout_ms
        self.group_max_size = group_max_size
        self._groups = Groups()
        self._offsets_log = OffsetsLog(logs, offsets_log_name)
        self._offsets = OffsetManager(
            self._groups,
            self._offsets_log,
            keep_alive=self._keep_alive,
            max_metadata_bytes=max_metadata_bytes,
            retention_ms=offsets_retention_ms,
            retention_check_interval_ms=offsets_retention_check_interval_ms,
            partition_exists=partition_exists,
        )
        # The consumer group protocol (KIP-848); ``topic_partitions`` names every topic and its
        # partition count (subscriptions are resolved against it).
        self._consumer = ConsumerGroups(
            self._groups,
            self._offsets_log,
            topics=topic_partitions or dict,
            heartbeat_interval_ms=consumer_heartbeat_interval_ms,
            session_timeout_ms=consumer_session_timeout_ms,
            assignors=consumer_assignors,
            max_size=group_max_size,
            # online migration between the two (KIP-848); the codec reads classic metadata
            migration_policy=MigrationPolicy.parse(consumer_migration_policy),
            classic_codec=classic_codec,
            classic_max_size=group_max_size,
        )
        self._consumer.on_downgrade = self._downgraded
        self._classic = ClassicMembers(self._consumer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loaded = False
        self._closed = False
        # share groups (KIP-932): their ids are refused here, listed and deleted with the rest
        self.share_groups: OtherGroups | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def load(self) -> None:
        """Open the internal log and replay it: committed offsets and stable groups come back.

        Until this finishes every call answers ``COORDINATOR_LOAD_IN_PROGRESS``.
        """
        self._loop = asyncio.get_running_loop()
        replayed = await self._offsets_log.load(self._groups)
        for group in self._groups.values():
            for member in group.members.values():
                self._schedule_heartbeat(group, member, member.session_timeout_ms)
        self._consumer.start(self._loop)
        self._loaded = True
        self._offsets.start(self._loop)
        log.debug("group coordinator loaded %d groups from %d records", len(self._groups), replayed)

    def close(self) -> None:
        """Stop every timer and answer every waiting join and sync with ``NOT_COORDINATOR``."""
        self._closed = True
        self._offsets.stop()
        self._consumer.close()
        for group in self._groups.values():
            group.cancel_timers()
            for member in group.members.values():
                member.cancel_heartbeat()
                member.complete_join(JoinResult(GroupError.NOT_COORDINATOR, member.member_id))
                member.complete_sync(SyncResult(GroupError.NOT_COORDINATOR))

    # -- helpers -------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("GroupCoordinator.load() has not run")
        return self._loop

    @property
    def offsets_retention_ms(self) -> int:
        return self._offsets.retention_ms

    @property
    def offsets_retention_check_interval_ms(self) -> int:
        return self._offsets.retention_check_interval_ms

    def _status(self, group_id: str, *, require_id: bool = True) -> GroupError | None:
        if self._closed:
            return GroupError.NOT_COORDINATOR
        if not self._loaded:
            return GroupError.COORDINATOR_LOAD_IN_PROGRESS
        if require_id and not group_id:
            return GroupError.INVALID_GROUP_ID
        return None

    def _is_share_group(self, group_id: str) -> GroupError | None:
        """GROUP_ID_NOT_FOUND for a share group's id: its offsets are not committed offsets."""
        if self.share_groups is not None and self.share_groups.exists(group_id):
            return GroupError.GROUP_ID_NOT_FOUND
        return None

    def _schedule_heartbeat(self, group: Group, member: Member, timeout_ms: int) -> None:
        member.cancel_heartbeat()
        member.heartbeat_timer = self.loop.call_later(
            timeout_ms / 1000, self._heartbeat_expired, group, member
        )

    def _keep_alive(self, group: Group, member: Member) -> None:
        """The member showed it is alive (an offset commit): restart its session timer."""
        self._schedule_heartbeat(group, member, member.session_timeout_ms)

    def _heartbeat_expired(self, group: Group, member: Member) -> None:
        member.heartbeat_timer = None
        if group.members.get(member.member_id) is not member:
            return
        if not member.is_new and (member.awaiting_join or member.awaiting_sync):
            # Waiting on the coordinator counts as alive; look again a session later.
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
            return
        log.info("member %s of group %s expired", member.member_id, group.group_id)
        self._remove_member_and_update_group(group, member)

    def _downgraded(self, group: Group, rebalance: bool) -> None:
        """A consumer group just became a classic one (online downgrade): its members' session
        timers start and, unless a static member just replaced the last consumer-protocol
        member, it rebalances, as Kafka does."""
        for member in group.members.values():
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
        if rebalance:
            self._prepare_rebalance(group)

    # -- join ----------------------------------------------------------------------------------

    async def join(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_member_id: bool,
    ) -> JoinResult:
        """JoinGroup.  Waits until the rebalance this join takes part in completes.

        ``member_id=""`` is a member joining for the first time.  With
        ``require_known_member_id`` (JoinGroup v4+) such a dynamic member gets
        ``MEMBER_ID_REQUIRED`` and the id to join again with.
        """
        error = self._status(group_id)
        if error is not None:
            return JoinResult(error, member_id)
        if self.share_groups is not None and self.share_groups.exists(group_id):
            return JoinResult(GroupError.INCONSISTENT_GROUP_PROTOCOL, "")  # as Kafka: a share group
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return JoinResult(GroupError.INVALID_SESSION_TIMEOUT, member_id)
        protocols = list(protocols)
        unknown = member_id == ""
        group = self._groups.get(group_id)
        if group is None:
            if not unknown:
                return JoinResult(GroupError.UNKNOWN_MEMBER_ID, member_id)
            group = self._groups.get_or_create(group_id)
        if not group.accepts_joining(
            member_id or group.static_member_id(group_instance_id) or "", self.group_max_size
        ):
            if member_id in group.members:
                self._remove_member_and_update_group(group, group.members[member_id])
            return JoinResult(GroupError.GROUP_MAX_SIZE_REACHED, "")
        if group.is_(Dead):
            return JoinResult(GroupError.COORDINATOR_NOT_AVAILABLE, member_id)
        if group.consumer is not None:
            if group.consumer.members:  # a classic member of a consumer group (KIP-848 migration)
                return self._classic.join(
                    group,
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    session_timeout_ms,
                    rebalance_timeout_ms,
                    protocol_type,
                    protocols,
                    require_known_member_id,
                )
            self._consumer.to_classic(group)  # an empty consumer group: it becomes classic
        if not group.supports_protocols(protocol_type, protocols):
            return JoinResult(GroupError.INCONSISTENT_GROUP_PROTOCOL, member_id)
        member = Member(
            member_id=member_id,
            group_instance_id=group_instance_id,
            client_id=client_id,
            client_host=client_host,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            protocol_type=protocol_type,
            protocols=protocols,
        )
        if unknown:
            return await self._join_new_member(group, member, require_known_member_id)
        return await self._join_current_member(group, member)

    async def _join_new_member(
        self, group: Group, joining: Member, require_known_member_id: bool
    ) -> JoinResult:
        joining.member_id = f"{joining.client_id}-{uuid.uuid4()}"
        if joining.group_instance_id is not None:
            old_id = group.static_member_id(joining.group_instance_id)
            if old_id is not None:
                return await self._replace_static_member(group, old_id, joining)
        elif require_known_member_id:
            # KIP-394: the member must come back with this id; until it does (or its session
            # timeout passes) the rebalance waits for it.
            new_id = joining.member_id
            group.pending_members[new_id] = self.loop.call_later(
                joining.session_timeout_ms / 1000, self._pending_member_expired, group, new_id
            )
            return JoinResult(GroupError.MEMBER_ID_REQUIRED, new_id)
        return await self._add_member_and_rebalance(group, joining)

    async def _join_current_member(self, group: Group, joining: Member) -> JoinResult:
        member_id = joining.member_id
        if member_id in group.pending_members:
            return await self._add_member_and_rebalance(group, joining)
        error = group.validate_member(member_id, joining.group_instance_id)
        if error is not None:
            return JoinResult(error, member_id)
        member = group.members[member_id]
        if group.is_(Completing) and member.matches(joining.protocols):
            # It probably missed the JoinGroup answer: give it again.
            return group.join_result(member)
        if group.is_(Stable) and not group.is_leader(member_id) and member.matches(joining.protocols):
            return group.join_result(member)
        if group.state in (Preparing, Completing, Stable):
            return await self._update_member_and_rebalance(group, member, joining)
        return JoinResult(GroupError.UNKNOWN_MEMBER_ID, member_id)

    async def _add_member_and_rebalance(self, group: Group, member: Member) -> JoinResult:
        timer = group.pending_members.pop(member.member_id, None)
        if timer is not None:
            timer.cancel()
        future: asyncio.Future[JoinResult] = self.loop.create_future()
        member.join_future = future
        member.is_new = True
        if group.is_(Preparing) and group.generation_id == 0:
            group.new_member_added = True
        group.add(member)
        self._schedule_heartbeat(group, member, self.new_member_join_timeout_ms)
        self._maybe_prepare_rebalance(group)
        self._try_complete_join(group)
        return await future

    async def _update_member_and_rebalance(self, group: Group, member: Member, joining: Member) -> JoinResult:
        self._update_member(member, joining)
        future = member.join_future
        assert future is not None
        self._maybe_prepare_rebalance(group)
        self._try_complete_join(group)
        return await future

    def _update_member(self, member: Member, joining: Member) -> None:
        member.protocols = joining.protocols
        member.rebalance_timeout_ms = joining.rebalance_timeout_ms
        member.session_timeout_ms = joining.session_timeout_ms
        member.client_id = joining.client_id
        member.client_host = joining.client_host
        # A second join while one waits: the earlier request is answered, the later one waits.
        member.complete_join(JoinResult(GroupError.REBALANCE_IN_PROGRESS, member.member_id))
        member.join_future = self.loop.create_future()

    async def _replace_static_member(self, group: Group, old_id: str, joining: Member) -> JoinResult:
        """A static member came back with an unknown member id: it takes over its old identity."""
        new_id = joining.member_id
        previous_leader = group.leader_id
        member = group.members.pop(old_id)
        member.complete_join(JoinResult(GroupError.FENCED_INSTANCE_ID, old_id))
        member.complete_sync(SyncResult(GroupError.FENCED_INSTANCE_ID))
        member.member_id = new_id
        group.members[new_id] = member
        assert joining.group_instance_id is not None
        group.static_members[joining.group_instance_id] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        if old_id in group.pending_sync:
            group.pending_sync.discard(old_id)
            group.pending_sync.add(new_id)
        self._schedule_heartbeat(group, member, joining.session_timeout_ms)
        old = (member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms)
        self._update_member(member, joining)
        future = member.join_future
        assert future is not None
        if group.is_(Stable):
            if group.protocol_name == group.select_protocol():
                # No rebalance: persist the new member id, then let it sync for its old
                # assignment.  The leader id answered is the previous one, so a rejoining
                # leader does not compute an assignment a stable group would not hand out.
                generation = group.generation_id
                error = await self._offsets_log.store_group(group)
                if error is not None:
                    member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms = old
                result = JoinResult(
                    error=error,
                    member_id=new_id,
                    generation_id=generation,
                    protocol_type=group.protocol_type,
                    protocol_name=group.protocol_name,
                    leader_id=previous_leader or "",
                )
                if not future.done():
                    future.set_result(result)
                if member.join_future is future:
                    member.join_future = None
            else:
                self._maybe_prepare_rebalance(group)
        elif group.is_(Completing):
            # The leader may already be assigning with the old member id: start over.
            self._prepare_rebalance(group)
        self._try_complete_join(group)
        return await future

    def _pending_member_expired(self, group: Group, member_id: str) -> None:
        if group.pending_members.pop(member_id, False) is not False:
            log.info("pending member %s of group %s expired", member_id, group.group_id)
            self._try_complete_join(group)

    # -- rebalancing ---------------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, group: Group) -> None:
        if group.state in (Stable, Completing, Empty):
            self._prepare_rebalance(group)

    def _prepare_rebalance(self, group: Group) -> None:
        if group.is_(Completing):
            self._reset_and_propagate(group, GroupError.REBALANCE_IN_PROGRESS)
        if group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None
        group.pending_sync.clear()
        if group.join_timer is not None:
            group.join_timer.cancel()
        from_empty = group.is_(Empty)
        group.transition(Preparing)
        log.info("group %s rebalancing (generation %d)", group.group_id, group.generation_id)
        if from_empty:
            group.initial_delay = True
            group.new_member_added = False
            remaining = max(group.rebalance_timeout_ms - self.initial_rebalance_delay_ms, 0)
            self._schedule_join(group, self.initial_rebalance_delay_ms, remaining)
        else:
            group.initial_delay = False
            self._schedule_join(group, group.rebalance_timeout_ms, 0)
        self._try_complete_join(group)

    def _schedule_join(self, group: Group, delay_ms: int, remaining_ms: int) -> None:
        group.join_timer = self.loop.call_later(delay_ms / 1000, self._join_timer_fired, group, remaining_ms)

    def _join_timer_fired(self, group: Group, remaining_ms: int) -> None:
        group.join_timer = None
        if group.initial_delay and group.new_member_added and remaining_ms > 0:
            # Members are still arriving at a new group: wait a little longer, within bounds.
            group.new_member_added = False
            delay = min(self.initial_rebalance_delay_ms, remaining_ms)
            self._schedule_join(group, delay, max(remaining_ms - delay, 0))
            return
        self._complete_join(group)

    def _try_complete_join(self, group: Group) -> None:
        if group.is_(Preparing) and not group.initial_delay and group.all_members_joined():
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        """The end of PreparingRebalance (Kafka's onCompleteJoin)."""
        if not group.is_(Preparing):
            return
        if group.join_timer is not None:
            group.join_timer.cancel()
            group.join_timer = None
        group.initial_delay = False
        for member in list(group.members.values()):
            if not member.awaiting_join and member.group_instance_id is None:
                log.info("member %s of group %s did not rejoin in time", member.member_id, group.group_id)
                group.remove(member.member_id)
                member.complete_sync(SyncResult(GroupError.UNKNOWN_MEMBER_ID))
        if group.members and not group.elect_joined_leader():
            # Only static members that have not rejoined remain: wait for them (their session
            # timeouts remove them otherwise).
            self._schedule_join(group, group.rebalance_timeout_ms, 0)
            return
        group.generation_id += 1
        group.pending_sync.clear()
        if not group.members:
            group.protocol_name = None
            group.transition(Empty)
            log.info("group %s is empty (generation %d)", group.group_id, group.generation_id)
            self._offsets_log.store_group_later(group)
            return
        group.protocol_name = group.select_protocol()
        group.transition(Completing)
        log.info(
            "group %s generation %d: %d members, leader %s",
            group.group_id,
            group.generation_id,
            len(group.members),
            group.leader_id,
        )
        for member in group.members.values():
            member.complete_join(group.join_result(member))
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        group.sync_timer = self.loop.call_later(
            group.rebalance_timeout_ms / 1000, self._sync_expired, group, group.generation_id
        )

    def _sync_expired(self, group: Group, generation: int) -> None:
        group.sync_timer = None
        if generation != group.generation_id or group.state not in (Completing, Stable):
            return
        if group.pending_sync:
            log.info(
                "members %s of group %s did not sync in time", sorted(group.pending_sync), group.group_id
            )
            for member_id in list(group.pending_sync):
                member = group.remove(member_id)
                if member is not None:
                    member.complete_sync(SyncResult(GroupError.UNKNOWN_MEMBER_ID))
            self._prepare_rebalance(group)

    def _reset_and_propagate(self, group: Group, error: GroupError) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate(group, error)

    def _propagate(self, group: Group, error: GroupError | None) -> None:
        for member in group.members.values():
            if member.awaiting_sync:
                if error is None:
                    result = SyncResult(None, group.protocol_type, group.protocol_name, member.assignment)
                else:
                    result = SyncResult(error)
                member.complete_sync(result)
                self._schedule_heartbeat(group, member, member.session_timeout_ms)

    def _remove_member_and_update_group(self, group: Group, member: Member) -> None:
        member.complete_join(JoinResult(GroupError.UNKNOWN_MEMBER_ID, ""))
        member.complete_sync(SyncResult(GroupError.UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)
        if group.state in (Stable, Completing):
            self._maybe_prepare_rebalance(group)
        elif group.is_(Preparing):
            self._try_complete_join(group)

    # -- sync ----------------------------------------------------------------------------------

    async def sync(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: Mapping[str, bytes],
    ) -> SyncResult:
        """SyncGroup.  The leader passes every member's assignment; followers wait for it.

        ``protocol_type``/``protocol_name`` (SyncGroup v5+) are checked when given.
        """
        error = self._status(group_id)
        if error is not None:
            return SyncResult(error)
        group = self._groups.get(group_id)
        if group is None:
            return SyncResult(GroupError.UNKNOWN_MEMBER_ID)
        if group.is_(Dead):
            return SyncResult(GroupError.COORDINATOR_NOT_AVAILABLE)
        if group.consumer is not None and group.consumer.members:
            return self._classic.sync(
                group, generation_id, member_id, group_instance_id, protocol_type, protocol_name
            )
        error = group.validate_member(member_id, group_instance_id)
        if error is None and generation_id != group.generation_id:
            error = GroupError.ILLEGAL_GENERATION
        if error is None and (
            (protocol_type is not None and protocol_type != group.protocol_type)
            or (protocol_name is not None and protocol_name != group.protocol_name)
        ):
            error = GroupError.INCONSISTENT_GROUP_PROTOCOL
        if error is not None:
            return SyncResult(error)
        member = group.members[member_id]
        if group.is_(Empty):
            return SyncResult(GroupError.UNKNOWN_MEMBER_ID)
        if group.is_(Preparing):
            return SyncResult(GroupError.REBALANCE_IN_PROGRESS)
        group.pending_sync.discard(member_id)
        if group.is_(Stable):
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
            return SyncResult(None, group.protocol_type, group.protocol_name, member.assignment)
        # CompletingRebalance
        member.complete_sync(SyncResult(GroupError.REBALANCE_IN_PROGRESS))
        future: asyncio.Future[SyncResult] = self.loop.create_future()
        member.sync_future = future
        if group.is_leader(member_id):
            full = {mid: bytes(assignments.get(mid, b"")) for mid in group.members}
            missing = [mid for mid in group.members if mid not in assignments]
            if missing:
                log.warning("group %s: no assignment for %s; giving them an empty one", group_id, missing)
            generation = group.generation_id
            error = await self._offsets_log.store_group(group, full)
            if group.is_(Completing) and group.generation_id == generation:
                if error is not None:
                    self._reset_and_propagate(group, error)
                    self._maybe_prepare_rebalance(group)
                else:
                    for mid, assignment in full.items():
                        if mid in group.members:
                            group.members[mid].assignment = assignment
                    group.transition(Stable)
                    self._propagate(group, None)
        return await future

    # -- liveness and leaving ------------------------------------------------------------------

    def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None = None
    ) -> GroupError | None:
        """Heartbeat: keeps the member alive; ``REBALANCE_IN_PROGRESS`` tells it to rejoin."""
        if not self._closed and not self._loaded:
            return None  # as Kafka: answer blindly while loading
        error = self._status(group_id)
        if error is not None:
            return error
        group = self._groups.get(group_id)
        if group is None:
            return GroupError.UNKNOWN_MEMBER_ID
        if group.is_(Dead):
            return GroupError.COORDINATOR_NOT_AVAILABLE
        if group.consumer is not None and group.consumer.members:
            return self._classic.heartbeat(group, generation_id, member_id, group_instance_id)
        error = group.validate_member(member_id, group_instance_id)
        if error is None and generation_id != group.generation_id:
            error = GroupError.ILLEGAL_GENERATION
        if error is not None:
            return error
        if group.is_(Empty):
            return GroupError.UNKNOWN_MEMBER_ID
        member = group.members[member_id]
        self._schedule_heartbeat(group, member, member.session_timeout_ms)
        return GroupError.REBALANCE_IN_PROGRESS if group.is_(Preparing) else None

    def leave(
        self, group_id: str, members: Iterable[tuple[str, str | None]]
    ) -> tuple[GroupError | None, list[GroupError | None]]:
        """LeaveGroup for ``(member_id, group_instance_id)`` pairs; returns the request's error and
        one error per member.  ``member_id=""`` with an instance id removes that static member
        (an administrative removal)."""
        leaving = list(members)
        error = self._status(group_id)
        if error is not None:
            return error, []
        group = self._groups.get(group_id)
        if group is None:
            return None, [GroupError.UNKNOWN_MEMBER_ID for _ in leaving]
        if group.is_(Dead):
            return GroupError.COORDINATOR_NOT_AVAILABLE, []
        if group.consumer is not None and group.consumer.members:
            return None, self._classic.leave(group, leaving)
        errors: list[GroupError | None] = []
        for member_id, group_instance_id in leaving:
            if member_id == "":
                current = group.static_member_id(group_instance_id)
                if current is None:
                    errors.append(GroupError.UNKNOWN_MEMBER_ID)
                    continue
                member_id = current
            elif member_id in group.pending_members:
                timer = group.pending_members.pop(member_id)
                if timer is not None:
                    timer.cancel()
                self._try_complete_join(group)
                errors.append(None)
                continue
            else:
                error = group.validate_member(member_id, group_instance_id)
                if error is not None:
                    errors.append(error)
                    continue
            log.info("member %s left group %s", member_id, group_id)
            self._remove_member_and_update_group(group, group.members[member_id])
            errors.append(None)
        return None, errors

    # -- offsets -------------------------------------------------------------------------------

    async def commit_offsets(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
    ) -> dict[TopicPartition, GroupError | None]:
        """OffsetCommit.  Returns once the commit is durable, with one error (or None) per partition.

        ``generation_id=-1`` with no member id commits for a group with no members (a simple
        consumer, or tools resetting offsets); a group with members accepts commits from its
        members of the current generation only.
        """
        error = self._status(group_id, require_id=False) or self._is_share_group(group_id)
        if error is not None:
            return dict.fromkeys(offsets, error)
        return await self._offsets.commit(group_id, generation_id, member_id, group_instance_id, offsets)

    def fetch_offsets(
        self, group_id: str, partitions: Iterable[TopicPartition] | None = None
    ) -> tuple[GroupError | None, dict[TopicPartition, OffsetAndMetadata]]:
        """OffsetFetch: the committed offsets of ``partitions`` (None: all the group's).

        Partitions without a committed offset are left out of the answer (Kafka answers them
        with offset -1); an unknown group has none.
        """
        error = self._status(group_id, require_id=False) or self._is_share_group(group_id)
        if error is not None:
            return error, {}
        return None, self._offsets.fetch(group_id, partitions)

    # transactional offsets: the transaction coordinator keeps them until the transaction ends

    @property
    def max_metadata_bytes(self) -> int:
        return self._offsets.max_metadata_bytes

    def validate_transactional_commit(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> GroupError | None:
        """Whether TxnOffsetCommit may commit for the group now (the member and generation)."""
        error = self._status(group_id) or self._is_share_group(group_id)
        return error or self._offsets.validate_transactional(
            group_id, generation_id, member_id, group_instance_id
        )

    def add_pending_transaction(
        self, group_id: str, producer_id: int, partitions: Iterable[TopicPartition]
    ) -> None:
        """Offsets of ``partitions`` are in the producer's open transaction (not visible yet)."""
        self._offsets.add_pending_transaction(group_id, producer_id, partitions)

    def end_pending_transaction(self, group_id: str, producer_id: int) -> None:
        self._offsets.end_pending_transaction(group_id, producer_id)

    def unstable_offsets(self, group_id: str) -> set[TopicPartition]:
        """Partitions whose offsets an open transaction holds (OffsetFetch require_stable, KIP-447)."""
        return self._offsets.unstable(group_id)

    async def commit_transactional_offsets(
        self, group_id: str, offsets: Mapping[TopicPartition, OffsetAndMetadata]
    ) -> GroupError | None:
        """Make a committed transaction's offsets the group's (durable when this returns None)."""
        error = self._status(group_id)
        return error or await self._offsets.commit_transactional(group_id, offsets)

    def delete_topic_offsets(self, topic: str) -> int:
        """Forget every group's offsets of ``topic`` (the topic was deleted); return how many.

        The tombstones are appended without waiting for them to be durable.
        """
        return self._offsets.delete_topic(topic)

    async def delete_offsets(
        self,
        group_id: str,
        partitions: Iterable[TopicPartition],
        subscribed_topics: Callable[[bytes], Collection[str] | None],
    ) -> tuple[GroupError | None, dict[TopicPartition, GroupError | None]]:
        """OffsetDelete: forget the group's committed offsets of ``partitions``, once durable.

        As Kafka: GROUP_ID_NOT_FOUND for no such group, NON_EMPTY_GROUP for a group with
        members that does not use the consumer protocol, and GROUP_SUBSCRIBED_TO_TOPIC for a
        partition of a topic a member subscribes to (``subscribed_topics`` reads them from a
        member's protocol metadata; None when it cannot, taken as every topic).
        """
        error = self._status(group_id) or self._is_share_group(group_id)
        if error is not None:
            return error, {}
        return await self._offsets.delete_offsets(group_id, partitions, subscribed_topics)

    def expire_offsets(self, now: int | None = None) -> int:
        """Expire offsets past ``offsets_retention_ms`` and forget empty groups with none left.

        As Kafka (KIP-211): the offsets of a consumer group expire only while it is Empty,
        counted from when it became empty (or from the commit, if later); those of a
        standalone group (commits only, no protocol type) from each commit.  Returns how many
        offsets expired.  Runs every ``offsets_retention_check_interval_ms``.
        """
        if not self._loaded or self._closed:
            return 0
        return self._offsets.expire(now)

    # -- the consumer group protocol (KIP-848) -------------------------------------------------

    @property
    def consumer_heartbeat_interval_ms(self) -> int:
        return self._consumer.heartbeat_interval_ms

    def consumer_heartbeat_interval(self, group_id: str) -> int:
        """The heartbeat interval of ``group_id`` (its consumer.heartbeat.interval.ms group config)."""
        return self._consumer.timeouts(group_id)[1]

    def use_group_configs(self, timeouts: Callable[[str], tuple[int, int]]) -> None:
        """Take consumer groups' session timeouts and heartbeat intervals from ``timeouts``."""
        self._consumer.group_timeouts = timeouts

    def consumer_heartbeat(self, group_id: str, request: HeartbeatRequest) -> HeartbeatResult:
        """ConsumerGroupHeartbeat: join (epoch 0), heartbeat, leave (-1) or static leave (-2)."""
        error = self._status(group_id, require_id=False)
        if error is not None:
            return HeartbeatResult(error, None, request.member_id, request.member_epoch)
        if self.share_groups is not None and self.share_groups.exists(group_id):
            message = f"Group {group_id} is not a consumer group"
            return HeartbeatResult(
                GroupError.GROUP_ID_NOT_FOUND, message, request.member_id, request.member_epoch
            )
        return self._consumer.heartbeat(group_id, request)

    def consumer_describe(self, group_id: str) -> tuple[GroupError | None, ConsumerGroup | None]:
        """ConsumerGroupDescribe: the group, or GROUP_ID_NOT_FOUND if it is not a consumer group."""
        error = self._status(group_id, require_id=False)
        if error is not None:
            return error, None
        group = self._groups.get(group_id)
        if group is None or group.consumer is None or group.is_(Dead):
            return GroupError.GROUP_ID_NOT_FOUND, None
        return None, group.consumer

    def validate_offset_fetch(
        self, group_id: str, member_id: str | None, member_epoch: int
    ) -> GroupError | None:
        """OffsetFetch v9+ of a consumer-group member: UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH."""
        group = self._groups.get(group_id)
        if group is None or group.consumer is None:
            return None
        return group.consumer.validate_offset_fetch(member_id, member_epoch)

    # -- administration ------------------------------------------------------------------------

    def describe(self, group_id: str) -> GroupDescription:
        """DescribeGroups for one group; members' metadata and assignments only when Stable.

        A consumer-protocol group (KIP-848) is described with ``group_type="consumer"``, its
        assignor as the protocol and each member's ``partitions``."""
        error = self._status(group_id, require_id=False)
        shared = self.share_groups.describe(group_id) if self.share_groups is not None else None
        if error is None and shared is not None:
            return shared
        group = self._groups.get(group_id)
        if error is not None or group is None:
            return GroupDescription(group_id, Dead.value, "", "", [], error)
        return group.describe()

    def member_count(self, group_id: str) -> int:
        """How many members ``group_id`` has, under either protocol (0 for an unknown group)."""
        group = self._groups.get(group_id)
        if group is None:
            shared = self.share_groups.describe(group_id) if self.share_groups is not None else None
            return len(shared.members) if shared is not None else 0
        return len(group.consumer.members) if group.consumer is not None else len(group.members)

    def list_groups(
        self, states: Iterable[str] | None = None
    ) -> tuple[GroupError | None, list[GroupListing]]:
        """ListGroups; ``states`` (case-insensitive state names) filters, None or empty = all."""
        error = self._status("", require_id=False)
        if error is not None:
            return error, []
        wanted = {s.lower() for s in states or ()}
        listings = [g.listing() for g in self._groups.values()]
        if self.share_groups is not None:
            listings += self.share_groups.listings()
        return None, [g for g in listings if not wanted or g.state.lower() in wanted]

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, GroupError | None]:
        """DeleteGroups: only groups without members; their offsets go (tombstones in the log)."""
        error = self._status("", require_id=False)
        if error is not None:
            return dict.fromkeys(group_ids, error)
        group_ids = list(group_ids)
        share = self.share_groups
        shared = [g for g in group_ids if share is not None and share.exists(g)]
        results = await self._offsets.delete_groups([g for g in group_ids if g not in shared])
        if share is not None and shared:
            results.update(share.delete_groups(shared))
        for group_id, result in results.items():
            if result is None:
                self._consumer.forget(group_id)
        return results
