"""What waits for the disk before a channel may answer: a confirmed publish, a committed
transaction.  Each counts the copies (and logs) it waits for and tells its channel when none
is left; the channel answers in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jackalope.amqp.channel import Channel


class PendingConfirm:
    """A confirmed publish waiting for its persistent copies to become durable."""

    __slots__ = ("channel", "failed", "remaining", "seq")

    def __init__(self, channel: Channel, seq: int, remaining: int, failed: bool) -> None:
        self.channel = channel
        self.seq = seq
        self.remaining = remaining  # copies not yet durable
        self.failed = failed

    def done(self, error: BaseException | None) -> None:
        if error is not None:
            self.failed = True
        self.remaining -= 1
        if self.remaining == 0:
            self.channel.pending_done()
            self.channel.confirm_settled(self.seq, not self.failed)


class Commit:
    """A tx.commit waiting for its persistent messages to be durable and its acks written."""

    __slots__ = ("channel", "error", "remaining")

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.remaining = 1  # released once routing and settling are over
        self.error: BaseException | None = None

    def done(self, error: BaseException | None) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.remaining -= 1
        if self.remaining == 0:
            self.channel.commit_done()

    def flushed(self) -> None:
        self.done(None)
