"""Share sessions (KIP-932), sans-IO: which partitions a share-group member fetches.

A member's ShareFetch requests belong to one share session, keyed by (group, member id).  Epoch
0 opens it (replacing one the member had) with the partitions the request lists; each later
request carries the next epoch (1, 2, ... wrapping to 1), adds the partitions it lists and
removes its ``forgotten_topics_data``; a fetch reads every partition of the session.  Epoch -1
closes it.  An epoch other than the expected one is ``INVALID_SHARE_SESSION_EPOCH``, a
non-zero epoch without a session ``SHARE_SESSION_NOT_FOUND``; the cache holds at most
``max_sessions`` (``SHARE_SESSION_LIMIT_REACHED`` past that, as Kafka's
``group.share.max.share.sessions``), making room first by evicting the sessions of members
that left their group.  A member leaving its group does not end its session: its last
acknowledgements (epoch -1) may come after its leaving heartbeat.

A session belongs to the connection whose epoch-0 request opened it (``owner``, any hashable
object; re-opening it on another connection moves it there).  When that connection closes,
:meth:`ShareSessionCache.disconnected` ends the sessions it owns and names them, so what their
members acquired is released at once, as Kafka does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from jackalope.kafka.protocol import ErrorCode

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
MAX_EPOCH = 0x7FFFFFFF

SessionKey = tuple[str, str]  # group, member id
PartitionKey = tuple[uuid.UUID, int]  # topic id, partition


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= MAX_EPOCH else epoch + 1


@dataclass
class ShareSession:
    key: SessionKey
    epoch: int = 1  # the epoch the next request must carry
    partitions: dict[PartitionKey, None] = field(default_factory=dict)  # ordered set


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The outcome of a request's epoch: an error, or the session's partitions to fetch
    (empty for a closing request); ``closed``: the request ended the session."""

    error: int = ErrorCode.none
    partitions: tuple[PartitionKey, ...] = ()
    closed: bool = False


class ShareSessionCache:
    def __init__(self, max_sessions: int = 2000) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[SessionKey, ShareSession] = {}
        self._owner: dict[SessionKey, object] = {}  # the connection that opened the session
        self._owned: dict[object, set[SessionKey]] = {}  # the sessions of each connection
        # whether a session's member has left its group (its session may be evicted)
        self.gone: Callable[[SessionKey], bool] = lambda key: False

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, key: SessionKey) -> ShareSession | None:
        return self._sessions.get(key)

    def fetch(
        self,
        key: SessionKey,
        epoch: int,
        wanted: Iterable[PartitionKey],
        forgotten: Iterable[PartitionKey] = (),
        owner: object | None = None,
    ) -> SessionResult:
        """A ShareFetch's epoch and partition lists applied to the member's session; a session
        opened (epoch 0) belongs to ``owner`` from then on (if given)."""
        if epoch == INITIAL_EPOCH:
            if key not in self._sessions and len(self._sessions) >= self.max_sessions:
                self._evict()
            if key not in self._sessions and len(self._sessions) >= self.max_sessions:
                return SessionResult(ErrorCode.share_session_limit_reached)
            self._forget(key)
            session = self._sessions[key] = ShareSession(key)
            session.partitions = dict.fromkeys(wanted)
            if owner is not None:
                self._owner[key] = owner
                self._owned.setdefault(owner, set()).add(key)
            return SessionResult(partitions=tuple(session.partitions))
        found = self._sessions.get(key)
        if found is None:
            return SessionResult(ErrorCode.share_session_not_found)
        if epoch == FINAL_EPOCH:
            self._forget(key)
            return SessionResult(closed=True)
        if epoch != found.epoch:
            return SessionResult(ErrorCode.invalid_share_session_epoch)
        found.epoch = next_epoch(found.epoch)
        for p in forgotten:
            found.partitions.pop(p, None)
        for p in wanted:
            found.partitions.setdefault(p)
        return SessionResult(partitions=tuple(found.partitions))

    def acknowledge(self, key: SessionKey, epoch: int) -> SessionResult:
        """A ShareAcknowledge's epoch: 0 is not allowed (acknowledgements need a session)."""
        if epoch == INITIAL_EPOCH:
            return SessionResult(ErrorCode.invalid_share_session_epoch)
        found = self._sessions.get(key)
        if found is None:
            return SessionResult(ErrorCode.share_session_not_found)
        if epoch == FINAL_EPOCH:
            self._forget(key)
            return SessionResult(closed=True)
        if epoch != found.epoch:
            return SessionResult(ErrorCode.invalid_share_session_epoch)
        found.epoch = next_epoch(found.epoch)
        return SessionResult(partitions=tuple(found.partitions))

    def _evict(self) -> None:
        """Make room: forget the sessions of members that are no longer in their group."""
        for key in [k for k in self._sessions if self.gone(k)]:
            self._forget(key)

    def drop(self, key: SessionKey) -> None:
        self._forget(key)

    def drop_group(self, group: str) -> None:
        for key in [k for k in self._sessions if k[0] == group]:
            self._forget(key)

    def owner(self, key: SessionKey) -> object | None:
        """The connection the session belongs to (None: no session, or opened without one)."""
        return self._owner.get(key)

    def disconnected(self, owner: object) -> list[SessionKey]:
        """``owner``'s connection closed: end the sessions it owns (not those re-opened on
        another connection since) and return their keys."""
        keys = sorted(self._owned.pop(owner, ()))
        for key in keys:
            self._sessions.pop(key, None)
            self._owner.pop(key, None)
        return keys

    def _forget(self, key: SessionKey) -> None:
        """End the session, and its tie to its connection."""
        self._sessions.pop(key, None)
        owner = self._owner.pop(key, None)
        if owner is not None:
            owned = self._owned.get(owner)
            if owned is not None:
                owned.discard(key)
                if not owned:
                    del self._owned[owner]
