"""Where a vhost's queues keep their messages: the logs of durable queues in the broker's log
manager, and the logs transient queues page to in the transient one (wiped at every start).

* A durable queue's log is ``queue/<vhost>/<queue>``; a priority queue has one per level it
  uses, ``queue.p<level>/<vhost>/<queue>`` above level 0.  A vhost name other than "/" is
  quoted (no "/" or "%" left in it), so no two vhost and queue names share a log.
* A transient queue's log is made on first need, under a random name, and deleted with it.

Every queue log has the manager's durability and fsync period, segments of at most
:data:`QUEUE_SEGMENT_BYTES` and no retention: messages go when settled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from jackalope.core.priority_store import LevelFactory
from jackalope.core.queue_store import Defer, QueueStore
from jackalope.storage import Log, LogConfig, LogManager

QUEUE_SEGMENT_BYTES: Final = 64 * 1024 * 1024


def queue_log_name(vhost: str, queue: str, level: int = 0) -> str:
    if vhost != "/":
        vhost = vhost.replace("%", "%25").replace("/", "%2F")
    return f"queue/{vhost}/{queue}" if not level else f"queue.p{level}/{vhost}/{queue}"


def queue_log_config(manager: LogManager) -> LogConfig:
    default = manager.default_config
    return default.replace(
        segment_bytes=min(default.segment_bytes, QUEUE_SEGMENT_BYTES), retention_ms=-1, retention_bytes=-1
    )


class QueueLogs:
    """The logs of one vhost's queues."""

    def __init__(
        self, vhost: str, logs: LogManager, transient: LogManager | None, defer: Defer | None
    ) -> None:
        self.vhost = vhost
        self.logs = logs
        self.transient = transient  # None: transient queues stay in memory
        self.defer = defer

    def durable(self, queue: str) -> Log:
        return self.logs.get_or_create(queue_log_name(self.vhost, queue), queue_log_config(self.logs))

    def transient_factory(self, queue: str) -> Callable[[], Log] | None:
        """How a non-durable queue gets a log to page its backlog to, when it first needs one."""
        manager = self.transient
        if manager is None:
            return None

        def create() -> Log:
            name = f"{self.vhost}/{queue}/{os.urandom(8).hex()}"
            return manager.create(name, queue_log_config(manager))

        return create

    def levels(self, queue: str, durable: bool) -> LevelFactory:
        """How a priority queue makes the store of one of its levels (see PriorityStore)."""

        def make(level: int, create: bool) -> QueueStore | None:
            if not durable:
                factory = self.transient_factory(f"{queue}.p{level}")
                return QueueStore(log_factory=factory, defer=self.defer) if create else None
            name = queue_log_name(self.vhost, queue, level)
            if not create and name not in self.logs:
                return None
            log_ = self.logs.get_or_create(name, queue_log_config(self.logs))
            return QueueStore(durable_log=log_, defer=self.defer)

        return make

    def drop(self, durable: bool, logs: list[Log]) -> None:
        """A queue is gone: so are its logs."""
        manager = self.logs if durable else self.transient
        if manager is not None:
            for log_ in logs:
                manager.remove(log_)
