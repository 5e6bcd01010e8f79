"""A publisher that floods and a consumer that keeps up, over raw sockets (for flow tests).

A client library spends more per message than the broker does, so neither could tell a
broker that starves its consumers from one that does not.  These two walk frames by their
lengths only (pamqp for the handshake, by way of :class:`~tests.amqp.rawamqp.RawConnection`):

* :class:`Flood` writes ``count`` precomputed basic.publish + header + body frames as fast as
  the socket takes them, in confirm mode, and a reader thread follows the confirms;
* :class:`FastConsumer` consumes with a prefetch and a multiple-ack every quarter of it,
  counting deliveries.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Callable

from pamqp import body as pbody
from pamqp import commands, frame, header

from tests.amqp.rawamqp import RawConnection

_HEAD = struct.Struct(">BHI")
_METHOD = struct.Struct(">I")
_DELIVER = (60 << 16) | 60
_ACK = (60 << 16) | 80
_NACK = (60 << 16) | 120


def publish_frames(queue: str, body: bytes, delivery_mode: int = 1) -> bytes:
    props = commands.Basic.Properties(delivery_mode=delivery_mode)
    return (
        frame.marshal(commands.Basic.Publish(exchange="", routing_key=queue), 1)
        + frame.marshal(header.ContentHeader(0, len(body), props), 1)
        + frame.marshal(pbody.ContentBody(body), 1)
    )


def _walk(raw: RawConnection, on_method: Callable[[int, bytes], bool]) -> None:
    """Read frames until ``on_method(method id, payload)`` returns False or the socket closes."""
    buf, raw.buffer = raw.buffer, b""
    while True:
        p = 0
        while len(buf) - p >= 7:
            kind, _, size = _HEAD.unpack_from(buf, p)
            end = p + 7 + size + 1
            if end > len(buf):
                break
            if kind == 1 and not on_method(_METHOD.unpack_from(buf, p + 7)[0], buf[p + 11 : end - 1]):
                return
            p = end
        buf = buf[p:]
        data = raw.sock.recv(1 << 20)
        if not data:
            return
        buf += data


class Flood:
    """Publishes ``count`` messages to ``queue`` in confirm mode, as fast as it can."""

    def __init__(self, host: str, port: int, queue: str, count: int, body: bytes = b"x" * 16) -> None:
        self.raw = RawConnection.open(host, port)
        self.raw.send_frame(commands.Confirm.Select(), channel=1)
        self.raw.expect(commands.Confirm.SelectOk)
        self.raw.sock.settimeout(None)
        self.count = count
        self.frames = publish_frames(queue, body)
        self.confirmed = 0
        self.nacked = 0
        self.on_confirm: Callable[[int], None] = lambda seq: None
        self.done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self._reader.start()
        threading.Thread(target=self._write, daemon=True).start()

    def _write(self) -> None:
        per_write = max(1, 65536 // len(self.frames))
        sent = 0
        try:
            while sent < self.count:
                n = min(per_write, self.count - sent)
                self.raw.sock.sendall(self.frames * n)
                sent += n
        except OSError:
            self.done.set()

    def _read(self) -> None:
        def method(method_id: int, payload: bytes) -> bool:
            if method_id in (_ACK, _NACK):
                seq = struct.unpack_from(">Q", payload)[0]
                if method_id == _NACK:
                    self.nacked += 1
                self.confirmed = max(self.confirmed, seq)
                self.on_confirm(self.confirmed)
                if self.confirmed >= self.count:
                    self.done.set()
                    return False
            return True

        with contextlib.suppress(OSError):  # the connection went: done all the same
            _walk(self.raw, method)
        self.done.set()

    def close(self) -> None:
        self.raw.close()


class FastConsumer:
    """Consumes ``queue`` with ``prefetch`` and basic.ack(multiple) every prefetch / 4."""

    def __init__(self, host: str, port: int, queue: str, prefetch: int = 1000) -> None:
        self.raw = RawConnection.open(host, port)
        self.raw.send_frame(commands.Basic.Qos(prefetch_count=prefetch), channel=1)
        self.raw.expect(commands.Basic.QosOk)
        self.raw.send_frame(commands.Basic.Consume(queue=queue, consumer_tag="flood"), channel=1)
        self.raw.expect(commands.Basic.ConsumeOk)
        self.raw.sock.settimeout(None)
        self.ack_every = max(1, prefetch // 4)
        self.delivered = 0
        self.redelivered = 0
        self.wanted = 0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self, wanted: int) -> None:
        self.wanted = wanted
        self._thread.start()

    def _read(self) -> None:
        sock = self.raw.sock

        def method(method_id: int, payload: bytes) -> bool:
            if method_id != _DELIVER:
                return True
            tag_len = payload[0]
            tag, flags = struct.unpack_from(">QB", payload, 1 + tag_len)
            self.redelivered += flags & 1
            self.delivered += 1
            if self.delivered % self.ack_every == 0 or self.delivered == self.wanted:
                sock.sendall(frame.marshal(commands.Basic.Ack(tag, multiple=True), 1))
            if self.delivered >= self.wanted:
                self.done.set()
                return False
            return True

        with contextlib.suppress(OSError):  # the connection went: done all the same
            _walk(self.raw, method)
        self.done.set()

    def close(self) -> None:
        self.raw.close()
