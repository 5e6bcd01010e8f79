"""The consumer timeout, as RabbitMQ 4.3 enforces it: a delivery left unacknowledged longer than
its queue's timeout cancels the consumer that holds it, and only that consumer.

The timeout is the queue's ``x-consumer-timeout`` (or its policy's ``consumer-timeout``), else
the broker's ``consumer_timeout_ms`` (default 30 minutes; 0: none).  A late consumer is
cancelled: its unacknowledged deliveries go back to their queue (counted as failed
deliveries, as a lost consumer's are) and the client hears ``basic.cancel`` if it announced
``consumer_cancel_notify``.  The channel stays open.  A late ``basic.get`` delivery, which
has no consumer to cancel, closes the channel with 406, RabbitMQ's answer.

One timer per channel, armed for the oldest unacknowledged delivery: deliveries are kept in
delivery order, so a check walks only the late ones (a later delivery from a queue with a
shorter timeout is looked at once the older ones are settled or late).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from jackalope.amqp import constants as c
from jackalope.amqp.errors import ChannelException
from jackalope.core.queue import Cancellable

if TYPE_CHECKING:
    from jackalope.amqp.channel import Channel
    from jackalope.amqp.consumers import ChannelConsumer, Unacked

log = logging.getLogger(__name__)


class ConsumerTimeouts:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._check: Cancellable | None = None

    def _limit_ms(self, item: Unacked) -> int:
        return item.queue.consumer_timeout_ms or self.channel.vhost.consumer_timeout_ms

    def delivered(self) -> None:
        """A delivery now awaits its ack: make sure a check is due."""
        if self._check is None:
            self._arm()

    def _arm(self) -> None:
        ch = self.channel
        timer = ch.vhost.timer
        if timer is None or not ch.unacked or ch.closing:
            return
        oldest = next(iter(ch.unacked.values()))
        limit = self._limit_ms(oldest)
        if limit <= 0:
            return
        due = oldest.at + limit / 1000 - time.monotonic()
        self._check = timer(max(due, 0) + 0.001, self._run)

    def _run(self) -> None:
        self._check = None
        ch = self.channel
        if ch.closing:
            return
        now = time.monotonic()
        late: dict[str, ChannelConsumer] = {}
        for item in ch.unacked.values():
            limit = self._limit_ms(item)
            if limit <= 0 or now - item.at < limit / 1000:
                break
            if item.consumer is None:  # a basic.get: nothing to cancel but the channel
                reason = (
                    f"delivery acknowledgement on channel {ch.number} timed out. Timeout value used: "
                    f"{limit} ms. This timeout value can be configured, see consumers doc guide to "
                    "learn more"
                )
                ch.output.close_channel(ch, ChannelException(c.PRECONDITION_FAILED, reason, 0))
                return
            late[item.consumer.tag] = item.consumer
        for consumer in late.values():
            log.warning(
                "consumer timed out: cancelled",
                extra={"consumer_tag": consumer.tag, "queue": consumer.queue.name, "channel": ch.number},
            )
            ch.cancel_late_consumer(consumer)
        self._arm()

    def close(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None
