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
* **Offsets** are committed against the group's generation (or by anyone with generation -1
  while the group has no members: simple/standalone consumers), appended to the internal log
  and answered once durable.  See :mod:`jackalope.core.groups.store` for the record format.

Everything runs on the broker's event loop; timers are ``loop.call_later`` handles.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from jackalope.core.groups import store
from jackalope.core.groups.group import Group, Member
from jackalope.core.groups.types import (
    GroupDescription,
    GroupError,
    GroupListing,
    GroupState,
    JoinResult,
    MemberDescription,
    OffsetAndMetadata,
    SyncResult,
    TopicPartition,
)
from jackalope.storage import Log, LogManager, Record, StorageError

log = logging.getLogger(__name__)

DAY_MS: Final = 24 * 3600 * 1000
_REPLAY_BYTES: Final = 1 << 20

Empty: Final = GroupState.EMPTY
Preparing: Final = GroupState.PREPARING_REBALANCE
Completing: Final = GroupState.COMPLETING_REBALANCE
Stable: Final = GroupState.STABLE
Dead: Final = GroupState.DEAD


def now_ms() -> int:
    return int(time.time() * 1000)


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
    ) -> None:
        self.logs = logs
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.new_member_join_timeout_ms = new_member_join_timeout_ms
        self.group_max_size = group_max_size
        self.max_metadata_bytes = max_metadata_bytes
        self.offsets_retention_ms = offsets_retention_ms
        self.offsets_retention_check_interval_ms = offsets_retention_check_interval_ms
        self.offsets_log_name = offsets_log_name
        #: Checked for every committed partition (UNKNOWN_TOPIC_OR_PARTITION when False).
        self.partition_exists = partition_exists
        self._groups: dict[str, Group] = {}
        self._log: Log | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loaded = False
        self._closed = False
        self._cleanup_timer: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def load(self) -> None:
        """Open the internal log and replay it: committed offsets and stable groups come back.

        Until this finishes every call answers ``COORDINATOR_LOAD_IN_PROGRESS``.
        """
        self._loop = asyncio.get_running_loop()
        self._log = log_ = self.logs.get(self.offsets_log_name)  # made on first use, as Kafka does
        offset = log_.start_offset if log_ is not None else 0
        replayed = 0
        while log_ is not None and offset < log_.end_offset:
            records = log_.read_records(offset, _REPLAY_BYTES)
            if not records:  # a gap (compaction): continue after it
                offset = log_.read(offset, _REPLAY_BYTES).next_offset
                continue
            for record in records:
                self._replay(record)
            replayed += len(records)
            offset = records[-1].offset + 1
            await asyncio.sleep(0)  # let the loop breathe on a large log
        for group in self._groups.values():
            for member in group.members.values():
                self._schedule_heartbeat(group, member, member.session_timeout_ms)
        self._loaded = True
        self._schedule_cleanup()
        log.debug("group coordinator loaded %d groups from %d records", len(self._groups), replayed)

    def _replay(self, record: Record) -> None:
        try:
            entry = store.decode(record)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning(
                "skipping malformed record at offset %d of %s: %s", record.offset, self.offsets_log_name, exc
            )
            return
        if isinstance(entry, store.OffsetEntry):
            tp = (entry.topic, entry.partition)
            if entry.committed is None:
                group_ = self._groups.get(entry.group_id)
                if group_ is not None:
                    group_.offsets.pop(tp, None)
                    group_.offset_positions.pop(tp, None)
                return
            group_ = self._group_or_new(entry.group_id)
            group_.offsets[tp] = entry.committed
            group_.offset_positions[tp] = record.offset
        elif isinstance(entry, store.GroupEntry):
            if entry.group is None:
                self._groups.pop(entry.group_id, None)
                return
            group_ = self._group_or_new(entry.group_id)
            stored = entry.group
            group_.generation_id = stored.generation
            group_.protocol_type = stored.protocol_type
            group_.protocol_name = stored.protocol if stored.members else None
            group_.state = Stable if stored.members else Empty
            group_.state_timestamp = stored.state_timestamp
            group_.members.clear()
            group_.static_members.clear()
            group_.leader_id = None
            for m in stored.members:
                group_.add(
                    Member(
                        member_id=m.member_id,
                        group_instance_id=m.group_instance_id,
                        client_id=m.client_id,
                        client_host=m.client_host,
                        session_timeout_ms=m.session_timeout_ms,
                        rebalance_timeout_ms=m.rebalance_timeout_ms,
                        protocol_type=stored.protocol_type or "",
                        protocols=[(stored.protocol or "", m.subscription)],
                        assignment=m.assignment,
                    )
                )
            group_.protocol_type = stored.protocol_type
            if stored.leader in group_.members:
                group_.leader_id = stored.leader

    def close(self) -> None:
        """Stop every timer and answer every waiting join and sync with ``NOT_COORDINATOR``."""
        self._closed = True
        if self._cleanup_timer is not None:
            self._cleanup_timer.cancel()
            self._cleanup_timer = None
        for group in self._groups.values():
            self._cancel_group_timers(group)
            for member in group.members.values():
                member.cancel_heartbeat()
                member.complete_join(JoinResult(GroupError.NOT_COORDINATOR, member.member_id))
                member.complete_sync(SyncResult(GroupError.NOT_COORDINATOR))

    def _cancel_group_timers(self, group: Group) -> None:
        for timer in (group.join_timer, group.sync_timer, *group.pending_members.values()):
            if timer is not None:
                timer.cancel()
        group.join_timer = group.sync_timer = None
        group.pending_members.clear()

    # -- helpers -------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("GroupCoordinator.load() has not run")
        return self._loop

    def _status(self, group_id: str, *, require_id: bool = True) -> GroupError | None:
        if self._closed:
            return GroupError.NOT_COORDINATOR
        if not self._loaded:
            return GroupError.COORDINATOR_LOAD_IN_PROGRESS
        if require_id and not group_id:
            return GroupError.INVALID_GROUP_ID
        return None

    def _group_or_new(self, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = Group(group_id, state_timestamp=now_ms())
        return group

    def _transition(self, group: Group, state: GroupState) -> None:
        group.state = state
        group.state_timestamp = now_ms()

    @staticmethod
    def _validate_member(group: Group, member_id: str, group_instance_id: str | None) -> GroupError | None:
        """Kafka's validateCurrentMember: a static member must hold its instance id; the member must exist."""
        if group_instance_id is not None:
            current = group.static_members.get(group_instance_id)
            if current is None:
                return GroupError.UNKNOWN_MEMBER_ID
            if current != member_id:
                return GroupError.FENCED_INSTANCE_ID
            return None
        if member_id not in group.members:
            return GroupError.UNKNOWN_MEMBER_ID
        return None

    def _schedule_heartbeat(self, group: Group, member: Member, timeout_ms: int) -> None:
        member.cancel_heartbeat()
        member.heartbeat_timer = self.loop.call_later(
            timeout_ms / 1000, self._heartbeat_expired, group, member
        )

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

    def _current_join_result(self, group: Group, member: Member) -> JoinResult:
        return JoinResult(
            error=None,
            member_id=member.member_id,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader_id=group.leader_id or "",
            members=group.member_metadata() if group.is_leader(member.member_id) else [],
        )

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
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return JoinResult(GroupError.INVALID_SESSION_TIMEOUT, member_id)
        protocols = list(protocols)
        unknown = member_id == ""
        group = self._groups.get(group_id)
        if group is None:
            if not unknown:
                return JoinResult(GroupError.UNKNOWN_MEMBER_ID, member_id)
            group = self._group_or_new(group_id)
        if not self._accept_joining_member(
            group, member_id or group.static_member_id(group_instance_id) or ""
        ):
            if member_id in group.members:
                self._remove_member_and_update_group(group, group.members[member_id])
            return JoinResult(GroupError.GROUP_MAX_SIZE_REACHED, "")
        if group.is_(Dead):
            return JoinResult(GroupError.COORDINATOR_NOT_AVAILABLE, member_id)
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

    def _accept_joining_member(self, group: Group, member_id: str) -> bool:
        """Kafka's acceptJoiningMember: group.max.size counts members awaiting join while preparing."""
        if group.state in (Empty, Dead):
            return True
        existing = group.members.get(member_id)
        if group.is_(Preparing):
            awaiting = group.awaiting_join_count + len(group.pending_members)
            return (existing is not None and existing.awaiting_join) or awaiting < self.group_max_size
        return existing is not None or len(group.members) < self.group_max_size

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
        error = self._validate_member(group, member_id, joining.group_instance_id)
        if error is not None:
            return JoinResult(error, member_id)
        member = group.members[member_id]
        if group.is_(Completing) and member.matches(joining.protocols):
            # It probably missed the JoinGroup answer: give it again.
            return self._current_join_result(group, member)
        if group.is_(Stable) and not group.is_leader(member_id) and member.matches(joining.protocols):
            return self._current_join_result(group, member)
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
                error = await self._store_group(group)
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
        self._transition(group, Preparing)
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
        if group.members and not self._elect_joined_leader(group):
            # Only static members that have not rejoined remain: wait for them (their session
            # timeouts remove them otherwise).
            self._schedule_join(group, group.rebalance_timeout_ms, 0)
            return
        group.generation_id += 1
        group.pending_sync.clear()
        if not group.members:
            group.protocol_name = None
            self._transition(group, Empty)
            log.info("group %s is empty (generation %d)", group.group_id, group.generation_id)
            self._store_group_later(group)
            return
        group.protocol_name = group.select_protocol()
        self._transition(group, Completing)
        log.info(
            "group %s generation %d: %d members, leader %s",
            group.group_id,
            group.generation_id,
            len(group.members),
            group.leader_id,
        )
        for member in group.members.values():
            member.complete_join(self._current_join_result(group, member))
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        group.sync_timer = self.loop.call_later(
            group.rebalance_timeout_ms / 1000, self._sync_expired, group, group.generation_id
        )

    @staticmethod
    def _elect_joined_leader(group: Group) -> bool:
        leader = group.members.get(group.leader_id or "")
        if leader is not None and leader.awaiting_join:
            return True
        for member_id, member in group.members.items():
            if member.awaiting_join:
                group.leader_id = member_id
                return True
        return False

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
        error = self._validate_member(group, member_id, group_instance_id)
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
            error = await self._store_group(group, full)
            if group.is_(Completing) and group.generation_id == generation:
                if error is not None:
                    self._reset_and_propagate(group, error)
                    self._maybe_prepare_rebalance(group)
                else:
                    for mid, assignment in full.items():
                        if mid in group.members:
                            group.members[mid].assignment = assignment
                    self._transition(group, Stable)
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
        error = self._validate_member(group, member_id, group_instance_id)
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
                error = self._validate_member(group, member_id, group_instance_id)
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
        error = self._status(group_id, require_id=False)
        if error is not None:
            return dict.fromkeys(offsets, error)
        group = self._groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return dict.fromkeys(offsets, GroupError.ILLEGAL_GENERATION)
            group = self._group_or_new(group_id)
        error = self._validate_commit(group, generation_id, member_id, group_instance_id)
        if error is None and group.is_(Completing):
            error = GroupError.REBALANCE_IN_PROGRESS
        if error is not None:
            return dict.fromkeys(offsets, error)
        member = group.members.get(member_id)
        if member is not None:
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
        results: dict[TopicPartition, GroupError | None] = {}
        accepted: list[tuple[TopicPartition, store.CommittedOffset]] = []
        now = now_ms()
        for tp, om in offsets.items():
            if self.partition_exists is not None and not self.partition_exists(*tp):
                results[tp] = GroupError.UNKNOWN_TOPIC_OR_PARTITION
            elif len(om.metadata.encode()) > self.max_metadata_bytes:
                results[tp] = GroupError.OFFSET_METADATA_TOO_LARGE
            else:
                results[tp] = None
                accepted.append((tp, store.CommittedOffset(OffsetAndMetadata(*om), now)))
        if not accepted:
            return results
        records = [store.offset_record(group_id, tp[0], tp[1], c) for tp, c in accepted]
        log_ = self._offsets_log()
        try:
            info = log_.append(records)
        except StorageError as exc:
            log.error("committing offsets of group %s: %s", group_id, exc)
            return {**results, **{tp: GroupError.NOT_COORDINATOR for tp, _ in accepted}}
        for i, (tp, _) in enumerate(accepted):
            group.pending_commits[tp] = info.base_offset + i
        try:
            await self.logs.wait_durable(log_, info.last_offset)
        except StorageError as exc:
            log.error("committing offsets of group %s: %s", group_id, exc)
            failed = True
        else:
            failed = False
        for i, (tp, committed) in enumerate(accepted):
            position = info.base_offset + i
            if failed:
                results[tp] = GroupError.NOT_COORDINATOR
            elif tp in group.pending_commits and group.offset_positions.get(tp, -1) < position:
                # Still wanted (not deleted meanwhile) and newer than what is applied.
                group.offsets[tp] = committed
                group.offset_positions[tp] = position
            if group.pending_commits.get(tp) == position:
                del group.pending_commits[tp]
        return results

    @staticmethod
    def _validate_commit(
        group: Group, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> GroupError | None:
        if group.is_(Dead):
            return GroupError.COORDINATOR_NOT_AVAILABLE
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = GroupCoordinator._validate_member(group, member_id, group_instance_id)
            if error is None and generation_id != group.generation_id:
                error = GroupError.ILLEGAL_GENERATION
            return error
        if not group.is_(Empty):
            return GroupError.UNKNOWN_MEMBER_ID  # only members commit for a group with members
        return None

    def fetch_offsets(
        self, group_id: str, partitions: Iterable[TopicPartition] | None = None
    ) -> tuple[GroupError | None, dict[TopicPartition, OffsetAndMetadata]]:
        """OffsetFetch: the committed offsets of ``partitions`` (None: all the group's).

        Partitions without a committed offset are left out of the answer (Kafka answers them
        with offset -1); an unknown group has none.
        """
        error = self._status(group_id, require_id=False)
        if error is not None:
            return error, {}
        group = self._groups.get(group_id)
        if group is None or group.is_(Dead):
            return None, {}
        if partitions is None:
            return None, {tp: c.offset for tp, c in group.offsets.items()}
        return None, {tp: group.offsets[tp].offset for tp in partitions if tp in group.offsets}

    def _offsets_log(self) -> Log:
        if self._loop is None:
            raise RuntimeError("GroupCoordinator.load() has not run")
        if self._log is None:
            config = self.logs.default_config.replace(cleanup_policy="compact", retention_ms=-1)
            self._log = self.logs.get_or_create(self.offsets_log_name, config)
        return self._log

    # -- group records -------------------------------------------------------------------------

    def _group_snapshot(self, group: Group, assignments: Mapping[str, bytes] | None = None) -> Record:
        protocol = group.protocol_name
        members = [
            store.StoredMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                session_timeout_ms=m.session_timeout_ms,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                subscription=m.metadata(protocol) if protocol is not None else b"",
                assignment=m.assignment if assignments is None else assignments.get(m.member_id, b""),
            )
            for m in group.members.values()
        ]
        stored = store.StoredGroup(
            protocol_type=group.protocol_type,
            generation=group.generation_id,
            protocol=protocol,
            leader=group.leader_id,
            state_timestamp=group.state_timestamp,
            members=members,
        )
        return store.group_record(group.group_id, stored)

    async def _store_group(
        self, group: Group, assignments: Mapping[str, bytes] | None = None
    ) -> GroupError | None:
        """Append the group's membership and wait until it is durable."""
        log_ = self._offsets_log()
        try:
            info = log_.append([self._group_snapshot(group, assignments)])
            await self.logs.wait_durable(log_, info.last_offset)
        except StorageError as exc:
            log.error("storing group %s: %s", group.group_id, exc)
            return GroupError.NOT_COORDINATOR
        return None

    def _store_group_later(self, group: Group) -> None:
        """Append the group's membership without waiting (it has just become Empty)."""
        try:
            self._offsets_log().append([self._group_snapshot(group)])
        except StorageError as exc:
            log.error("storing group %s: %s", group.group_id, exc)

    # -- administration ------------------------------------------------------------------------

    def describe(self, group_id: str) -> GroupDescription:
        """DescribeGroups for one group; members' metadata and assignments only when Stable."""
        error = self._status(group_id, require_id=False)
        group = self._groups.get(group_id)
        if error is not None or group is None:
            return GroupDescription(group_id, Dead.value, "", "", [], error)
        stable = group.is_(Stable) and group.protocol_name is not None
        protocol = group.protocol_name or ""
        members = [
            MemberDescription(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata(protocol) if stable else b"",
                assignment=m.assignment if stable else b"",
            )
            for m in group.members.values()
        ]
        return GroupDescription(
            group_id=group_id,
            state=group.state.value,
            protocol_type=group.protocol_type or "",
            protocol=protocol if stable else "",
            members=members,
        )

    def list_groups(
        self, states: Iterable[str] | None = None
    ) -> tuple[GroupError | None, list[GroupListing]]:
        """ListGroups; ``states`` (case-insensitive state names) filters, None or empty = all."""
        error = self._status("", require_id=False)
        if error is not None:
            return error, []
        wanted = {s.lower() for s in states or ()}
        return None, [
            GroupListing(g.group_id, g.protocol_type or "", g.state.value)
            for g in self._groups.values()
            if not wanted or g.state.value.lower() in wanted
        ]

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, GroupError | None]:
        """DeleteGroups: only groups without members; their offsets go (tombstones in the log)."""
        results: dict[str, GroupError | None] = {}
        records: list[Record] = []
        deleted: list[str] = []
        for group_id in group_ids:
            error = self._status(group_id, require_id=False)
            group = self._groups.get(group_id)
            if error is not None:
                results[group_id] = error
            elif group is None or group.is_(Dead):
                results[group_id] = GroupError.GROUP_ID_NOT_FOUND
            elif not group.is_(Empty):
                results[group_id] = GroupError.NON_EMPTY_GROUP
            else:
                records.extend(self._forget_group(group))
                deleted.append(group_id)
                results[group_id] = None
        if records:
            log_ = self._offsets_log()
            try:
                info = log_.append(records)
                await self.logs.wait_durable(log_, info.last_offset)
            except StorageError as exc:
                log.error("deleting groups %s: %s", deleted, exc)
                results.update(dict.fromkeys(deleted, GroupError.NOT_COORDINATOR))
        return results

    def _forget_group(self, group: Group) -> list[Record]:
        """Mark ``group`` Dead and drop it; return the tombstones that delete it from the log."""
        self._transition(group, Dead)
        self._cancel_group_timers(group)
        del self._groups[group.group_id]
        partitions = set(group.offsets) | set(group.pending_commits)
        group.offsets.clear()
        group.pending_commits.clear()
        records = [store.offset_tombstone(group.group_id, t, p) for t, p in sorted(partitions)]
        records.append(store.group_tombstone(group.group_id))
        return records

    def delete_topic_offsets(self, topic: str) -> int:
        """Forget every group's offsets of ``topic`` (the topic was deleted); return how many.

        The tombstones are appended without waiting for them to be durable.
        """
        records: list[Record] = []
        for group in self._groups.values():
            for tp in sorted({tp for tp in (*group.offsets, *group.pending_commits) if tp[0] == topic}):
                group.offsets.pop(tp, None)
                group.offset_positions.pop(tp, None)
                group.pending_commits.pop(tp, None)
                records.append(store.offset_tombstone(group.group_id, *tp))
        if records:
            try:
                self._offsets_log().append(records)
            except StorageError as exc:
                log.error("deleting offsets of topic %s: %s", topic, exc)
        return len(records)

    # -- expiry --------------------------------------------------------------------------------

    def _schedule_cleanup(self) -> None:
        self._cleanup_timer = self.loop.call_later(
            self.offsets_retention_check_interval_ms / 1000, self._cleanup_fired
        )

    def _cleanup_fired(self) -> None:
        self._cleanup_timer = None
        try:
            self.expire_offsets()
        finally:
            if not self._closed:
                self._schedule_cleanup()

    def expire_offsets(self, now: int | None = None) -> int:
        """Expire offsets past ``offsets_retention_ms`` and forget empty groups with none left.

        As Kafka (KIP-211): the offsets of a consumer group expire only while it is Empty,
        counted from when it became empty (or from the commit, if later); those of a
        standalone group (commits only, no protocol type) from each commit.  Returns how many
        offsets expired.  Runs every ``offsets_retention_check_interval_ms``.
        """
        if not self._loaded or self._closed:
            return 0
        now = now_ms() if now is None else now
        records: list[Record] = []
        expired = 0
        for group in list(self._groups.values()):
            if not group.is_(Empty):
                continue
            for tp, committed in list(group.offsets.items()):
                base = committed.commit_timestamp
                if group.protocol_type is not None:
                    base = max(base, group.state_timestamp)
                if tp not in group.pending_commits and base + self.offsets_retention_ms <= now:
                    del group.offsets[tp]
                    group.offset_positions.pop(tp, None)
                    records.append(store.offset_tombstone(group.group_id, *tp))
                    expired += 1
            if not group.offsets and not group.pending_commits and not group.pending_members:
                records.extend(self._forget_group(group))
        if records:
            try:
                self._offsets_log().append(records)
            except StorageError as exc:
                log.error("expiring offsets: %s", exc)
        return expired
