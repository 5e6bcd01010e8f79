"""AMQP 0-9-1 numbers that the codec and the server share.

Values come from the protocol's machine-readable spec as RabbitMQ ships it
(``rabbitmq_codegen/amqp-rabbitmq-0.9.1.json``) and from pamqp, which embeds the same spec.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

PROTOCOL_HEADER: Final = b"AMQP\x00\x00\x09\x01"
"""What a 0-9-1 client sends first, and what a server answers with (then closes) when the
client's header names a protocol it does not speak."""

# Frame types (octet 0 of every frame).
FRAME_METHOD: Final = 1
FRAME_HEADER: Final = 2
FRAME_BODY: Final = 3
FRAME_HEARTBEAT: Final = 8

FRAME_END: Final = 0xCE
"""The octet that closes every frame; anything else means the peer lost framing."""

FRAME_HEADER_SIZE: Final = 7
"""type(1) + channel(2) + payload size(4)."""

FRAME_OVERHEAD: Final = 8
"""Header plus frame-end: what a frame costs beyond its payload (RabbitMQ's EMPTY_FRAME_SIZE)."""

FRAME_MIN_SIZE: Final = 4096
"""The spec's frame-min-size: every peer must accept frames this large before tuning.
RabbitMQ 4 uses 8192 for its pre-tune limit; a server may accept more than the minimum."""

# Class ids.
CLASS_CONNECTION: Final = 10
CLASS_CHANNEL: Final = 20
CLASS_EXCHANGE: Final = 40
CLASS_QUEUE: Final = 50
CLASS_BASIC: Final = 60
CLASS_CONFIRM: Final = 85
CLASS_TX: Final = 90


def method_index(class_id: int, method_id: int) -> int:
    """The 32-bit id a method frame starts with: class-id << 16 | method-id (pamqp's ``index``)."""
    return (class_id << 16) | method_id


# Method ids of the methods the server reads or writes by hand (once per message), and of the
# ones error replies name without a pamqp object at hand.
CONNECTION_START: Final = 0x000A000A
CONNECTION_START_OK: Final = 0x000A000B
CONNECTION_TUNE: Final = 0x000A001E
CONNECTION_TUNE_OK: Final = 0x000A001F
CONNECTION_OPEN: Final = 0x000A0028
CONNECTION_CLOSE: Final = 0x000A0032
CONNECTION_CLOSE_OK: Final = 0x000A0033
CONNECTION_BLOCKED: Final = 0x000A003C
CONNECTION_UNBLOCKED: Final = 0x000A003D
CONNECTION_UPDATE_SECRET: Final = 0x000A0046
CHANNEL_OPEN: Final = 0x0014000A
CHANNEL_FLOW: Final = 0x00140014
CHANNEL_CLOSE: Final = 0x00140028
CHANNEL_CLOSE_OK: Final = 0x00140029
BASIC_PUBLISH: Final = 0x003C0028
BASIC_RETURN: Final = 0x003C0032
BASIC_DELIVER: Final = 0x003C003C
BASIC_GET_OK: Final = 0x003C0047
BASIC_ACK: Final = 0x003C0050
BASIC_REJECT: Final = 0x003C005A
BASIC_NACK: Final = 0x003C0078
TX_COMMIT: Final = 0x005A0014


class ReplyCode(IntEnum):
    """Reply codes for connection.close / channel.close / basic.return.

    The member name is what RabbitMQ puts in front of reply texts ("NOT_FOUND - no queue 'q'").
    """

    REPLY_SUCCESS = 200
    CONTENT_TOO_LARGE = 311
    NO_ROUTE = 312
    NO_CONSUMERS = 313
    CONNECTION_FORCED = 320
    INVALID_PATH = 402
    ACCESS_REFUSED = 403
    NOT_FOUND = 404
    RESOURCE_LOCKED = 405
    PRECONDITION_FAILED = 406
    FRAME_ERROR = 501
    SYNTAX_ERROR = 502
    COMMAND_INVALID = 503
    CHANNEL_ERROR = 504
    UNEXPECTED_FRAME = 505
    RESOURCE_ERROR = 506
    NOT_ALLOWED = 530
    NOT_IMPLEMENTED = 540
    INTERNAL_ERROR = 541

    @property
    def is_hard_error(self) -> bool:
        """True if the spec classes this code as a connection exception (close the connection,
        not just the channel).  The spec's soft errors are 311-313 and 403-406."""
        return self in _HARD_ERRORS


_HARD_ERRORS: Final = frozenset(
    {
        ReplyCode.CONNECTION_FORCED,
        ReplyCode.INVALID_PATH,
        ReplyCode.FRAME_ERROR,
        ReplyCode.SYNTAX_ERROR,
        ReplyCode.COMMAND_INVALID,
        ReplyCode.CHANNEL_ERROR,
        ReplyCode.UNEXPECTED_FRAME,
        ReplyCode.RESOURCE_ERROR,
        ReplyCode.NOT_ALLOWED,
        ReplyCode.NOT_IMPLEMENTED,
        ReplyCode.INTERNAL_ERROR,
    }
)

REPLY_SUCCESS: Final = ReplyCode.REPLY_SUCCESS
CONTENT_TOO_LARGE: Final = ReplyCode.CONTENT_TOO_LARGE
NO_ROUTE: Final = ReplyCode.NO_ROUTE
NO_CONSUMERS: Final = ReplyCode.NO_CONSUMERS
CONNECTION_FORCED: Final = ReplyCode.CONNECTION_FORCED
INVALID_PATH: Final = ReplyCode.INVALID_PATH
ACCESS_REFUSED: Final = ReplyCode.ACCESS_REFUSED
NOT_FOUND: Final = ReplyCode.NOT_FOUND
RESOURCE_LOCKED: Final = ReplyCode.RESOURCE_LOCKED
PRECONDITION_FAILED: Final = ReplyCode.PRECONDITION_FAILED
FRAME_ERROR: Final = ReplyCode.FRAME_ERROR
SYNTAX_ERROR: Final = ReplyCode.SYNTAX_ERROR
COMMAND_INVALID: Final = ReplyCode.COMMAND_INVALID
CHANNEL_ERROR: Final = ReplyCode.CHANNEL_ERROR
UNEXPECTED_FRAME: Final = ReplyCode.UNEXPECTED_FRAME
RESOURCE_ERROR: Final = ReplyCode.RESOURCE_ERROR
NOT_ALLOWED: Final = ReplyCode.NOT_ALLOWED
NOT_IMPLEMENTED: Final = ReplyCode.NOT_IMPLEMENTED
INTERNAL_ERROR: Final = ReplyCode.INTERNAL_ERROR
