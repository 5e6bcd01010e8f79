"""The share-group coordinator (KIP-932): every share group of the broker, their members'
session timers, persistence of the groups' existence, and the hooks the delivery side uses.

* **Namespace.**  Group ids are shared with classic and consumer groups: a share heartbeat on
  the id of another kind of group is GROUP_ID_NOT_FOUND ("Group X is not a share group."), as
  in Kafka; ``other_group`` tells whether such a group exists (the group coordinator in turn
  asks :meth:`ShareCoordinator.exists`).
* **Sessions.**  Each heartbeat restarts the member's session timer (the group's
  ``share.session.timeout.ms``); when it fires the member is removed, as if it had left.
* **Persistence.**  A share group exists until it is deleted (DeleteGroups), members or not:
  its id, epoch and creation time are kept in one JSON file (written whole, atomically) when a
  group is created or deleted.  Members are not: after a restart they are unknown, and clients
  rejoin (UNKNOWN_MEMBER_ID makes them send epoch 0).
* **Hooks** for the share-partition side: ``on_member_left(group, member)`` (release its
  acquired records), ``on_group_deleted(group)``, ``on_config_changed(group)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

from jackalope.core.groups.types import GroupDescription, GroupError, GroupListing, MemberDescription
from jackalope.core.share.configs import GroupConfigs, ShareGroupConfig
from jackalope.core.share.group import (
    ASSIGNOR_NAME,
    JOIN_EPOCH,
    LEAVE_EPOCH,
    ShareGroup,
    ShareHeartbeat,
    ShareHeartbeatResult,
    invalid,
)
from jackalope.storage.files import atomic_write

log = logging.getLogger(__name__)

PROTOCOL_TYPE: Final = "share"
DEFAULT_MAX_SIZE: Final = 200  # group.share.max.size

TimerKey = tuple[str, str]


class ShareGroupListing(GroupListing):
    """A share group in ListGroups (protocol type and group type "share")."""

    __slots__ = ()

    @property
    def group_type(self) -> str:
        return "share"


def now_ms() -> int:
    return int(time.time() * 1000)


class ShareCoordinator:
    """All share groups of one broker."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        configs: GroupConfigs | None = None,
        topics: Callable[[], Mapping[str, int]] | None = None,
        other_group: Callable[[str], bool] | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.path = path
        self.configs = configs if configs is not None else GroupConfigs()
        self.topics = topics or dict
        self.other_group = other_group or (lambda group_id: False)
        self.max_size = max_size
        self._groups: dict[str, ShareGroup] = {}
        self._sessions: dict[TimerKey, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_member_left: list[Callable[[str, str], None]] = []
        self.on_group_deleted: list[Callable[[str], None]] = []
        self.on_config_changed: list[Callable[[str], None]] = []
        self.configs.on_changed.append(self._config_changed)
        if path is not None:
            self._load(path)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def close(self) -> None:
        for handle in self._sessions.values():
            handle.cancel()
        self._sessions.clear()

    def _load(self, path: Path) -> None:
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is damaged: {exc}") from None
        for group_id, value in dict(document.get("groups", {})).items():
            epoch = int(value.get("group_epoch", 0))
            # members are gone: the next join starts a new epoch above any a client remembers
            self._groups[str(group_id)] = ShareGroup(
                str(group_id),
                group_epoch=epoch + 1,
                assignment_epoch=epoch,
                created_ms=int(value.get("created_ms", 0)),
            )

    def _save(self) -> None:
        if self.path is None:
            return
        document = {
            "groups": {
                g.group_id: {"group_epoch": g.group_epoch, "created_ms": g.created_ms}
                for g in sorted(self._groups.values(), key=lambda g: g.group_id)
            }
        }
        atomic_write(self.path, (json.dumps(document, indent=2) + "\n").encode())

    # -- the interface the delivery side (ShareFetch, ShareAcknowledge) uses --------------------

    def exists(self, group_id: str) -> bool:
        return group_id in self._groups

    def member_error(self, group_id: str, member_id: str) -> GroupError | None:
        """Whether ``member_id`` may fetch for ``group_id`` now: None, GROUP_ID_NOT_FOUND (no
        such share group) or UNKNOWN_MEMBER_ID."""
        group = self._groups.get(group_id)
        if group is None:
            return GroupError.GROUP_ID_NOT_FOUND
        if member_id not in group.members:
            return GroupError.UNKNOWN_MEMBER_ID
        return None

    def assignment(self, group_id: str, member_id: str) -> frozenset[tuple[str, int]]:
        """The (topic, partition)s ``member_id`` has been given (empty for an unknown member)."""
        group = self._groups.get(group_id)
        return group.assignment(member_id) if group is not None else frozenset()

    def config(self, group_id: str) -> ShareGroupConfig:
        return self.configs.share(group_id)

    def group(self, group_id: str) -> ShareGroup | None:
        return self._groups.get(group_id)

    def groups(self) -> list[ShareGroup]:
        return list(self._groups.values())

    # -- ShareGroupHeartbeat -------------------------------------------------------------------

    def heartbeat(self, group_id: str, hb: ShareHeartbeat) -> ShareHeartbeatResult:
        message = invalid(group_id, hb)
        if message is not None:
            return ShareHeartbeatResult(GroupError.INVALID_REQUEST, message, hb.member_id, hb.member_epoch)
        group = self._groups.get(group_id)
        if group is None:
            if self.other_group(group_id):
                return ShareHeartbeatResult(
                    GroupError.GROUP_ID_NOT_FOUND,
                    f"Group {group_id} is not a share group.",
                    hb.member_id,
                    hb.member_epoch,
                )
            if hb.member_epoch != JOIN_EPOCH:
                error = (
                    GroupError.GROUP_ID_NOT_FOUND
                    if hb.member_epoch == LEAVE_EPOCH
                    else GroupError.UNKNOWN_MEMBER_ID
                )
                return ShareHeartbeatResult(
                    error,
                    f"Share group {group_id} not found."
                    if error is GroupError.GROUP_ID_NOT_FOUND
                    else f"Member {hb.member_id} is not a member of group {group_id}.",
                    hb.member_id,
                    hb.member_epoch,
                )
            group = ShareGroup(group_id, created_ms=now_ms())
            self._groups[group_id] = group
            created = True
        else:
            created = False
        if (
            hb.member_epoch == JOIN_EPOCH
            and hb.member_id not in group.members
            and len(group.members) >= self.max_size
        ):
            return ShareHeartbeatResult(
                GroupError.GROUP_MAX_SIZE_REACHED,
                f"The share group has reached its maximum capacity of {self.max_size} members.",
                hb.member_id,
                hb.member_epoch,
            )
        result = group.heartbeat(hb, self.topics())
        if created:
            if result.error is None:
                log.info("share group %s created", group_id)
                self._save()
            else:
                del self._groups[group_id]
                return result
        if result.error is not None:
            return result
        if hb.member_epoch == LEAVE_EPOCH:
            self._cancel((group_id, hb.member_id))
            log.info("member %s left share group %s", hb.member_id, group_id)
            self._member_left(group_id, hb.member_id)
        else:
            self._schedule_session(group_id, hb.member_id)
        return result

    def heartbeat_interval_ms(self, group_id: str) -> int:
        return self.configs.share(group_id).heartbeat_interval_ms

    def topic_deleted(self, topic: str) -> None:
        """A topic was deleted: the groups subscribed to it drop its partitions (a new epoch)."""
        for group in self._groups.values():
            if group.forget_topic(topic):
                log.info("share group %s: subscribed topic %s deleted", group.group_id, topic)

    # -- timers --------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _schedule_session(self, group_id: str, member_id: str) -> None:
        key = (group_id, member_id)
        self._cancel(key)
        timeout = self.configs.share(group_id).session_timeout_ms
        self._sessions[key] = self.loop.call_later(timeout / 1000, self._session_expired, key)

    def _cancel(self, key: TimerKey) -> None:
        handle = self._sessions.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _session_expired(self, key: TimerKey) -> None:
        self._sessions.pop(key, None)
        group_id, member_id = key
        group = self._groups.get(group_id)
        if group is None or group.remove(member_id) is None:
            return
        log.info("member %s of share group %s removed: its session timed out", member_id, group_id)
        self._member_left(group_id, member_id)

    def _member_left(self, group_id: str, member_id: str) -> None:
        for callback in list(self.on_member_left):
            try:
                callback(group_id, member_id)
            except Exception:
                log.exception("on_member_left callback failed for %s/%s", group_id, member_id)

    def _config_changed(self, group_id: str) -> None:
        for callback in list(self.on_config_changed):
            try:
                callback(group_id)
            except Exception:
                log.exception("on_config_changed callback failed for %s", group_id)

    # -- administration ------------------------------------------------------------------------

    def delete_groups(self, group_ids: Iterable[str]) -> dict[str, GroupError | None]:
        """DeleteGroups of share groups: NON_EMPTY_GROUP while members remain; ids that are not
        share groups are GROUP_ID_NOT_FOUND (the caller asks the group coordinator first)."""
        results: dict[str, GroupError | None] = {}
        deleted = []
        for group_id in group_ids:
            group = self._groups.get(group_id)
            if group is None:
                results[group_id] = GroupError.GROUP_ID_NOT_FOUND
            elif group.members:
                results[group_id] = GroupError.NON_EMPTY_GROUP
            else:
                del self._groups[group_id]
                deleted.append(group_id)
                results[group_id] = None
        if deleted:
            self._save()
            for group_id in deleted:
                log.info("share group %s deleted", group_id)
                for callback in list(self.on_group_deleted):
                    try:
                        callback(group_id)
                    except Exception:
                        log.exception("on_group_deleted callback failed for %s", group_id)
        return results

    def describe(self, group_id: str) -> GroupDescription | None:
        """The share group as the group coordinator describes groups (group type "share", the
        assignor as protocol, each member's partitions); None if there is no such share group."""
        group = self._groups.get(group_id)
        if group is None:
            return None
        members = [
            MemberDescription(
                m.member_id, None, m.client_id, m.client_host, b"", b"", tuple(sorted(m.assigned))
            )
            for m in sorted(group.members.values(), key=lambda m: m.member_id)
        ]
        return GroupDescription(
            group_id, group.state.value, PROTOCOL_TYPE, ASSIGNOR_NAME, members, group_type="share"
        )

    def listings(self) -> list[GroupListing]:
        return [ShareGroupListing(g.group_id, PROTOCOL_TYPE, g.state.value) for g in self._groups.values()]
