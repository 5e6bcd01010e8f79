"""A quorum queue, as RabbitMQ 4.3 has them, on one node: a durable queue with the quorum rules.

* **Delivery counts.** A delivery that fails (``basic.reject`` with requeue, or a consumer
  lost with the message unacknowledged) counts; a plain return (``basic.nack`` with requeue)
  does not.  The front-end shows the count as the ``x-delivery-count`` header of a redelivery.
* **Delivery limit.** A message whose failed deliveries exceed ``x-delivery-limit`` (default
  20; -1 for none) is a poison message: it is dead-lettered (reason ``delivery_limit``) if the
  queue says where, dropped otherwise.
* **Delayed retries** (``x-delayed-retry-type``: ``failed``, ``returned`` or ``all``; ``-min``
  and ``-max`` in ms): a returned message of that kind waits ``min(min * count, max)`` before
  it is ready again, the count being its failed deliveries, its returns, or both.  The wait is
  held in memory: after a restart the message is ready at once.
* **Dead-letter strategy** ``at-least-once`` (with ``x-overflow: reject-publish``, as RabbitMQ
  requires): a dead-lettered message is settled only once its copies are safe in their
  queues, so a crash between the two delivers it again rather than losing it.

Everything else (TTL, lengths, single active consumer, priorities up to 32) is the classic
queue's.  Delivery counts live on the queue entries, in memory: after a restart they start
again from 0 (a message delivered before the restart is still flagged redelivered).  Once
clustered, this is the type that replicates.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

from jackalope.core import queue as classic
from jackalope.core.message import QueueEntry
from jackalope.core.queue import DELIVERY_LIMIT, Cancellable, Queue
from jackalope.core.queue_arguments import DELIVERY_LIMIT as DEFAULT_DELIVERY_LIMIT
from jackalope.core.queue_types import QUORUM


class QuorumQueue(Queue):
    type_name = QUORUM

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.retry_type = str(self.arguments.get("x-delayed-retry-type") or "disabled")
        self.retry_min: int = self.arguments.get("x-delayed-retry-min") or 0
        self.retry_max: int | None = self.arguments.get("x-delayed-retry-max")
        self._waiting: list[tuple[int, int, QueueEntry]] = []  # (ready at, seq, entry): a heap
        self._waiting_seq = 0
        self._retry_wake: Cancellable | None = None
        self._retry_wake_at = 0

    def configure(self, effective: Mapping[str, Any]) -> None:
        super().configure(effective)
        limit = effective.get("x-delivery-limit")
        self.delivery_limit: int = DEFAULT_DELIVERY_LIMIT if limit is None else limit  # -1: none
        self.dead_letter_at_least_once = (
            effective.get("x-dead-letter-strategy") == "at-least-once" and self.overflow == "reject-publish"
        )

    @property
    def message_count(self) -> int:
        """Ready messages, and those waiting out a retry delay."""
        return super().message_count + len(self._waiting)

    def requeue(self, entries: Iterable[QueueEntry], *, failed: bool = True) -> None:
        back = list(entries)
        if not back or self.deleted:
            super().requeue(back)  # nothing to count: only the unacked tally goes down
            return
        poison = []
        returned = []
        for entry in back:
            if failed:
                entry.delivery_count += 1
            else:
                entry.returns += 1
            if failed and 0 <= self.delivery_limit < entry.delivery_count:
                poison.append(entry)
            else:
                returned.append(entry)
        for entry in poison:
            self._unacked -= 1
            self._leave(entry, DELIVERY_LIMIT)
        delayed = [(self._retry_delay(e, failed), e) for e in returned]
        now_ready = [e for delay, e in delayed if delay <= 0 or self._timer is None]
        for delay, entry in delayed:
            if delay > 0 and self._timer is not None and not self.deleted:
                self._unacked -= 1
                self._hold(entry, classic.now_ms() + delay)
        super().requeue(now_ready)

    def _retry_delay(self, entry: QueueEntry, failed: bool) -> int:
        kind = self.retry_type
        if kind == "disabled" or (kind == "failed" and not failed) or (kind == "returned" and failed):
            return 0
        count = (
            entry.delivery_count
            if kind == "failed"
            else entry.returns
            if kind == "returned"
            else (entry.delivery_count + entry.returns)
        )
        delay = self.retry_min * count
        return delay if self.retry_max is None else min(delay, self.retry_max)

    def _hold(self, entry: QueueEntry, ready_at: int) -> None:
        self._waiting_seq += 1
        heapq.heappush(self._waiting, (ready_at, self._waiting_seq, entry))
        self._arm_retry()

    def _arm_retry(self) -> None:
        if not self._waiting or self._timer is None:
            return
        first = self._waiting[0][0]
        if self._retry_wake is not None:
            if self._retry_wake_at <= first:
                return
            self._retry_wake.cancel()
        self._retry_wake_at = first
        self._retry_wake = self._timer(max(first - classic.now_ms(), 0) / 1000 + 0.001, self._retry_due)

    def _retry_due(self) -> None:
        self._retry_wake = None
        if self.deleted:
            return
        now = classic.now_ms()
        due = []
        while self._waiting and self._waiting[0][0] <= now:
            due.append(heapq.heappop(self._waiting)[2])
        if due:
            self._unacked += len(due)  # super().requeue takes them off again
            super().requeue(due)
        self._arm_retry()

    def purge(self) -> int:
        waiting, self._waiting = self._waiting, []
        for _, _, entry in waiting:
            self.store.settle(entry)
        return super().purge() + len(waiting)

    def delete(self) -> None:
        if self._retry_wake is not None:
            self._retry_wake.cancel()
            self._retry_wake = None
        self._waiting = []
        super().delete()
