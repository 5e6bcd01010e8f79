"""AMQP 0-9-1 by hand over a plain socket, for sending what no client library would send.

pamqp encodes and decodes the frames; this module only does the handshake and the reading::

    with RawConnection.open(host, port) as raw:     # protocol header, start/tune/open, channel 1
        raw.send_frame(commands.Basic.Qos(prefetch_count=1), channel=1)
        assert isinstance(raw.read_method(), commands.Basic.QosOk)
"""

from __future__ import annotations

import socket
import struct
from types import TracebackType
from typing import Self, TypeVar

from pamqp import commands, constants, exceptions, frame, heartbeat
from pamqp.base import Frame

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"

F = TypeVar("F", bound=Frame)

CLIENT_PROPERTIES = {
    "product": "jackalope raw test client",
    "capabilities": {"authentication_failure_close": True},
}


def raw_frame(frame_type: int, channel: int, payload: bytes, end: bytes = FRAME_END) -> bytes:
    """A frame built byte by byte, so that any part of it can be wrong."""
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + end


def method_payload(class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    return struct.pack(">HH", class_id, method_id) + arguments


class RawConnection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.frame_max = 0

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 10) -> RawConnection:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(timeout)
        return cls(sock)

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        user: str = "guest",
        password: str = "guest",
        frame_max: int = 131072,
        open_channel: bool = True,
        heartbeat: int = 0,
        capabilities: dict[str, bool] | None = None,
    ) -> RawConnection:
        """Connect and do the whole handshake by hand; channel 1 is open unless told otherwise."""
        raw = cls.connect(host, port)
        try:
            raw.handshake(
                user=user,
                password=password,
                frame_max=frame_max,
                heartbeat=heartbeat,
                capabilities=capabilities,
            )
            if open_channel:
                raw.send_frame(commands.Channel.Open(), channel=1)
                raw.expect(commands.Channel.OpenOk)
        except BaseException:
            raw.close()
            raise
        return raw

    def handshake(
        self,
        *,
        user: str,
        password: str,
        frame_max: int,
        heartbeat: int = 0,
        capabilities: dict[str, bool] | None = None,
    ) -> None:
        """The handshake; ``capabilities`` are announced besides CLIENT_PROPERTIES' own."""
        self.send(PROTOCOL_HEADER)
        start = self.expect(commands.Connection.Start)
        assert "PLAIN" in str(start.mechanisms), start.mechanisms
        self.send_frame(
            commands.Connection.StartOk(
                client_properties={
                    **CLIENT_PROPERTIES,
                    "capabilities": {**CLIENT_PROPERTIES["capabilities"], **(capabilities or {})},
                },
                mechanism="PLAIN",
                response=f"\0{user}\0{password}",
            )
        )
        tune = self.expect(commands.Connection.Tune)
        self.frame_max = min(frame_max, tune.frame_max) if tune.frame_max else frame_max
        self.send_frame(
            commands.Connection.TuneOk(
                channel_max=tune.channel_max, frame_max=self.frame_max, heartbeat=heartbeat
            )
        )
        self.send_frame(commands.Connection.Open(virtual_host="/"))
        self.expect(commands.Connection.OpenOk)

    # -- writing ---------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, value: frame.FrameTypes, channel: int = 0) -> None:
        self.send(frame.marshal(value, channel))

    # -- reading ---------------------------------------------------------------------------------

    def recv_some(self) -> bytes:
        """Whatever the peer sends next; b"" once it has closed the connection."""
        return self.sock.recv(65536)

    def read_frame(self) -> tuple[int, frame.FrameTypes]:
        """The next frame (heartbeats skipped) as (channel, frame); EOFError when the peer closed."""
        while True:
            if len(self.buffer) >= constants.FRAME_HEADER_SIZE:
                try:
                    used, channel, value = frame.unmarshal(self.buffer)
                except exceptions.UnmarshalingException:
                    pass  # incomplete: read more
                else:
                    self.buffer = self.buffer[used:]
                    if isinstance(value, heartbeat.Heartbeat):
                        continue
                    return channel, value
            data = self.recv_some()
            if not data:
                raise EOFError(f"connection closed by peer; unread bytes: {self.buffer!r}")
            self.buffer += data

    def read_method(self) -> Frame:
        while True:
            _, value = self.read_frame()
            if isinstance(value, Frame):
                return value

    def expect(self, kind: type[F]) -> F:
        value = self.read_method()
        if not isinstance(value, kind):
            raise AssertionError(f"expected {kind.__name__}, got {value!r}")
        return value

    def expect_connection_close(self, *, wait_for_eof: bool = False) -> commands.Connection.Close:
        """Read until the server's connection.close and answer close-ok; with ``wait_for_eof``
        also see the server close the socket (RabbitMQ takes ~3 s to do so after an error)."""
        while True:
            value = self.read_method()
            if isinstance(value, commands.Connection.Close):
                break
        self.send_frame(commands.Connection.CloseOk())
        if wait_for_eof:
            self.expect_eof()
        return value

    def expect_eof(self) -> bytes:
        """Read until the server closes the socket; what it sent until then (after any frames
        already read). A reset counts as closed: RabbitMQ resets rather than closes at times."""
        data = self.buffer
        self.buffer = b""
        while True:
            try:
                chunk = self.recv_some()
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["CLIENT_PROPERTIES", "PROTOCOL_HEADER", "RawConnection", "method_payload", "raw_frame"]
