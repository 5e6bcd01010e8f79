"""AMQP exceptions: what the server answers with connection.close or channel.close.

The spec (section 1.4.2 of the 0-9-1 reference) knows two kinds: a *channel exception* (a
soft error) closes one channel, a *connection exception* (a hard error) closes the whole
connection.  Each carries the close method's fields: a reply code, a reply text and the
class and method ids of the method that failed (0 when no method is to blame).  Reply texts
follow RabbitMQ's style, ``NOT_FOUND - no queue 'x' in vhost '/'``, because clients and
their users match on them.
"""

from __future__ import annotations

from jackalope.amqp.constants import ReplyCode

MAX_REPLY_TEXT = 255
"""reply-text is a shortstr."""


def reply_text(reply_code: int, reason: str) -> str:
    """``NAME - reason`` for a reply code, cut to a shortstr."""
    try:
        name = ReplyCode(reply_code).name
    except ValueError:
        name = str(reply_code)
    return f"{name} - {reason}"[:MAX_REPLY_TEXT]


class AmqpError(Exception):
    """An exception to report with a close method."""

    def __init__(self, reply_code: int, reason: str, method_index: int = 0) -> None:
        super().__init__(reason)
        self.reply_code = int(reply_code)
        self.reason = reason
        self.reply_text = reply_text(reply_code, reason)
        self.class_id = method_index >> 16
        self.method_id = method_index & 0xFFFF

    def __str__(self) -> str:
        return self.reply_text


class ChannelException(AmqpError):
    """Closes the channel the failing method came on (a soft error)."""


class ConnectionException(AmqpError):
    """Closes the whole connection (a hard error)."""


class FrameError(ConnectionException):
    """The peer's bytes broke the framing or could not be decoded (raised by the frame reader)."""
