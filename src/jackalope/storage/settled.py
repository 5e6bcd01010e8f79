"""Which offsets of a log have been settled (consumed for good), as a moving head and a bitmap.

A queue settles its messages mostly in order, but not only: a consumer that acknowledges out
of order, or one slow message at the head, leaves settled offsets above the first unsettled
one.  :class:`SettledOffsets` keeps ``head`` (every offset below it is settled) and one bit
per offset from there on, so a million out-of-order settlements cost 125 kB, not a Python
set of a million integers.  Settling the head advances it over every settled offset behind
it; the bitmap drops its front as the head moves on.
"""

from __future__ import annotations

from typing import Final

_TRIM_BYTES: Final = 4096
"""Drop this many bytes from the front of the bitmap once the head has passed them."""


class SettledOffsets:
    __slots__ = ("_base", "_bits", "_count", "head")

    def __init__(self, head: int = 0) -> None:
        self.head = head
        self._base = head - head % 8  # the offset of bit 0 of _bits[0]
        self._bits = bytearray()
        self._count = 0  # bits set (settled offsets above the head)

    def __contains__(self, offset: int) -> bool:
        if offset < self.head:
            return True
        i = offset - self._base
        byte = i >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (i & 7)))

    @property
    def pending(self) -> int:
        """Settled offsets above the head (out of order)."""
        return self._count

    def add(self, offset: int) -> bool:
        """Settle ``offset``; True if it was not settled before."""
        head = self.head
        if offset == head and not self._count:  # in order: the common case
            self.head = head + 1
            return True
        if offset < head:
            return False
        if not self._count:  # nothing pending: start the bitmap at the head
            self._base = head - head % 8
            self._bits.clear()
        i = offset - self._base
        byte = i >> 3
        bits = self._bits
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits)))
        mask = 1 << (i & 7)
        if bits[byte] & mask:
            return False
        bits[byte] |= mask
        self._count += 1
        if offset == head:
            self._advance()
        return True

    def add_range(self, start: int, end: int) -> None:
        """Settle ``start..end-1`` (whole bytes of the bitmap at a time)."""
        start = max(start, self.head)
        if start >= end:
            return
        if start == self.head and not self._count:
            self.head = end
            return
        if not self._count:
            self._base = self.head - self.head % 8
            self._bits.clear()
        bits = self._bits
        lo = start - self._base
        hi = end - self._base
        need = (hi + 7) >> 3
        if need > len(bits):
            bits.extend(bytes(need - len(bits)))
        first, last = lo >> 3, (hi - 1) >> 3
        before = int.from_bytes(bits[first : last + 1], "little").bit_count()
        if first == last:
            bits[first] |= ((1 << (hi - lo)) - 1) << (lo & 7)
        else:
            bits[first] |= (0xFF << (lo & 7)) & 0xFF
            bits[first + 1 : last] = b"\xff" * (last - first - 1)
            bits[last] |= (1 << (((hi - 1) & 7) + 1)) - 1
        self._count += int.from_bytes(bits[first : last + 1], "little").bit_count() - before
        if start == self.head:
            self._advance()

    def _advance(self) -> None:
        """Move the head over the settled offsets at it, clearing their bits (whole bytes at
        a time where it can)."""
        bits = self._bits
        head = self.head
        base = self._base
        count = self._count
        while True:
            i = head - base
            byte = i >> 3
            if byte >= len(bits):
                break
            if not i & 7 and bits[byte] == 0xFF:
                bits[byte] = 0
                count -= 8
                head += 8
                continue
            mask = 1 << (i & 7)
            if not bits[byte] & mask:
                break
            bits[byte] &= ~mask
            count -= 1
            head += 1
        self.head = head
        self._count = count
        if not count:
            self._bits = bytearray()
            self._base = head - head % 8
        elif (head - base) >> 3 >= _TRIM_BYTES:
            drop = (head - base) >> 3
            del bits[:drop]
            self._base = base + drop * 8
