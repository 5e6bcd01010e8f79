"""Structural checks of AMQP frames, as strict as RabbitMQ's decoder.

RabbitMQ decodes method arguments with exact binary patterns, so arguments that do not fill a
method frame exactly, or field tables whose entries do not add up, are FRAME_ERROR there; these
walkers give the same answers without building any objects, so the frame reader can refuse a
malformed frame before pamqp decodes it, and a content header's property list can be checked
down to its headers table's length on every message (its contents only when a router needs
them).  Every walker is iterative: a hostile nesting depth costs a bounded stack.
"""

from __future__ import annotations

import struct
from typing import Final, cast

from pamqp import base as pamqp_base
from pamqp import commands

from jackalope.amqp.constants import FRAME_ERROR
from jackalope.amqp.errors import FrameError

MAX_TABLE_DEPTH: Final = 64
"""Nesting limit for field tables and arrays.  RabbitMQ sets none, but nothing real nests this
deep, and the limit keeps pamqp's recursive decoder far from Python's recursion limit."""

COMMANDS: Final = cast("dict[int, type[pamqp_base.Frame]]", commands.INDEX_MAPPING)
"""pamqp's method classes by method id (class-id << 16 | method-id).  pamqp types the mapping as
dict[int, type]; every value is a pamqp Frame subclass."""

PAMQP_DECODE_ERRORS: Final = (struct.error, ValueError, TypeError, OverflowError, OSError, RecursionError)
"""What pamqp's decoders raise on bad input that passed the structural checks: undecodable
UTF-8 (ValueError), timestamps no datetime can hold (OverflowError, OSError, ValueError)."""

_U32: Final = struct.Struct(">I")


def malformed(what: str, method_index: int = 0) -> FrameError:
    """FRAME_ERROR "cannot decode <what>".

    FRAME_ERROR, not SYNTAX_ERROR: the spec's 501 is "a malformed frame that the recipient
    could not decode", and RabbitMQ answers undecodable method arguments with it too
    (rabbit_misc:frame_error, "cannot decode")."""
    return FrameError(FRAME_ERROR, f"cannot decode {what}", method_index)


# Field kinds for the structural walkers (a fixed size in octets, or one of these), and the
# layouts of every method's arguments and of the basic class's properties in those kinds.
SHORTSTR: Final = -1
LONGSTR: Final = -2
TABLE: Final = -3
BIT: Final = -4
_KINDS: Final = {
    "bit": BIT,
    "octet": 1,
    "short": 2,
    "long": 4,
    "longlong": 8,
    "timestamp": 8,
    "shortstr": SHORTSTR,
    "longstr": LONGSTR,
    "table": TABLE,
}

METHOD_LAYOUTS: Final = {
    index: tuple(_KINDS[cls.amqp_type(name)] for name in cls.__slots__) for index, cls in COMMANDS.items()
}

BASIC_PROPERTY_LAYOUT: Final = tuple(
    (commands.Basic.Properties.flags[name], _KINDS[commands.Basic.Properties.amqp_type(name)])
    for name in commands.Basic.Properties.__slots__
)

# Value sizes of field-table types, as RabbitMQ parses them (rabbit_binary_parser).
_TABLE_FIXED: Final = {
    ord("t"): 1,
    ord("b"): 1,
    ord("B"): 1,
    ord("s"): 2,
    ord("u"): 2,
    ord("I"): 4,
    ord("i"): 4,
    ord("f"): 4,
    ord("l"): 8,
    ord("L"): 8,
    ord("d"): 8,
    ord("T"): 8,
    ord("D"): 5,
    ord("V"): 0,
}
_TABLE_SIZED: Final = frozenset(b"SxFA")  # a long length, then that many octets


def fields_fit(layout: tuple[int, ...], data: bytes | bytearray, p: int, end: int) -> bool:
    """True if method arguments of this layout fill data[p:end] exactly (tables well formed)."""
    bits = 0
    for kind in layout:
        if kind == BIT:
            if bits % 8 == 0:  # consecutive bits share octets, eight to an octet
                p += 1
            bits += 1
            continue
        bits = 0
        if kind > 0:
            p += kind
        elif kind == SHORTSTR:
            if p >= end:
                return False
            p += 1 + data[p]
        else:
            if p + 4 > end:
                return False
            start = p + 4
            p = start + _U32.unpack_from(data, p)[0]
            if p > end or (kind == TABLE and not table_ok(data, start, p, False)):
                return False
    return p == end


def table_ok(data: bytes | bytearray, p: int, end: int, is_array: bool) -> bool:
    """True if data[p:end] is a well-formed field table (or array) body.

    Iterative, so a hostile nesting depth costs a bounded stack, not a RecursionError.
    """
    outer: list[tuple[int, bool]] = []
    fixed = _TABLE_FIXED
    while True:
        if p == end:
            if not outer:
                return True
            end, is_array = outer.pop()
            continue
        if not is_array:  # a shortstr name comes first
            p += 1 + data[p]
            if p >= end:
                return False
        tag = data[p]
        p += 1
        size = fixed.get(tag)
        if size is not None:
            p += size
        elif tag in _TABLE_SIZED:
            if p + 4 > end:
                return False
            start = p + 4
            p = start + _U32.unpack_from(data, p)[0]
            if p > end:
                return False
            if tag == 0x46 or tag == 0x41:  # F, A: descend; resume after it at `p`
                if len(outer) >= MAX_TABLE_DEPTH:
                    return False
                outer.append((end, is_array))
                end, is_array, p = p, tag == 0x41, start
        else:
            return False
        if p > end:
            return False


def property_flags(properties: bytes) -> tuple[int, int]:
    """(flags of the first flag word, offset of the property list).

    Bit 0 of a flag word says another word follows (spec 4.2.6.1).  Basic has 14 properties,
    all in the first word, so later words must carry no property bits.  Bit 1 is unused.
    """
    n = len(properties)
    if n < 2:
        raise malformed("content header without property flags")
    flags = (properties[0] << 8) | properties[1]
    i = 2
    word = flags
    while word & 1:
        if i + 2 > n:
            raise malformed("truncated property flags")
        word = (properties[i] << 8) | properties[i + 1]
        if word & 0xFFFE:
            raise malformed("property flags beyond basic's fourteen properties")
        i += 2
    return flags & 0xFFFC, i


_PRESENT_KINDS: dict[int, tuple[int, ...]] = {}
"""Flags -> kinds of the properties present, in order.  At most 2**14 entries; in practice a
handful, since each client library sets the same few properties on every message."""


def _present_kinds(flags: int) -> tuple[int, ...]:
    kinds = _PRESENT_KINDS[flags] = tuple(kind for bit, kind in BASIC_PROPERTY_LAYOUT if flags & bit)
    return kinds


def check_basic_properties(properties: bytes, deep: bool) -> None:
    """Raise FrameError unless the property list matches its flags exactly.

    The headers table is skipped by its length prefix; ``deep`` also checks its contents.
    """
    n = len(properties)
    if n > 1 and not properties[1] & 1:  # one flag word: the only case clients produce
        flags = (properties[0] << 8) | (properties[1] & 0xFC)
        i = 2
    else:
        flags, i = property_flags(properties)
    kinds = _PRESENT_KINDS.get(flags)
    if kinds is None:
        kinds = _present_kinds(flags)
    for kind in kinds:
        if kind > 0:
            i += kind
        elif kind == SHORTSTR:
            if i >= n:
                raise malformed("property list")
            i += 1 + properties[i]
        else:  # the headers table
            if i + 4 > n:
                raise malformed("property list")
            start = i + 4
            i = start + _U32.unpack_from(properties, i)[0]
            if deep and i <= n and not table_ok(properties, start, i, False):
                raise malformed("headers table")
    if i != n:
        raise malformed("property list")
