"""A minimal blocking Kafka client over a socket, for what the client libraries hide.

Requests and responses are the ``kio`` package's dataclasses (generated from Kafka's message
schemas); this module adds only the framing: size prefix and request/response headers.
"""

from __future__ import annotations

import io
import socket
import struct
from types import ModuleType
from typing import Any

from kio.index import load_payload_module
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

API_VERSIONS = 18


def request_module(api_key: int, version: int) -> ModuleType:
    return load_payload_module(api_key, version, EntityType.request)


def response_module(api_key: int, version: int) -> ModuleType:
    return load_payload_module(api_key, version, EntityType.response)


def _message_class(module: ModuleType, suffix: str) -> type[Any]:
    for name, value in vars(module).items():
        if (
            name.endswith(suffix)
            and isinstance(value, type)
            and getattr(value, "__type__", None) in (EntityType.request, EntityType.response)
        ):
            return value
    raise LookupError(suffix)


class WireClient:
    def __init__(self, bootstrap: str, timeout: float = 10) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, body: Any) -> int:
        """Send the kio request ``body``; returns its correlation id."""
        self._correlation += 1
        out = io.BytesIO()
        out.write(struct.pack(">hhih", body.__api_key__, body.__version__, self._correlation, 4))
        out.write(b"test")
        if body.__flexible__:
            out.write(b"\0")  # request header v2: no tagged fields
        entity_writer(type(body))(out, body)
        frame = out.getvalue()
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self._correlation

    def receive(self, api_key: int, version: int) -> Any:
        (size,) = struct.unpack(">i", self._read(4))
        data = self._read(size)
        cls = _message_class(response_module(api_key, version), "Response")
        pos = 4
        if cls.__flexible__ and api_key != API_VERSIONS:
            pos += 1  # response header v1: no tagged fields
        body, _ = entity_reader(cls)(data, pos)
        return body

    def call(self, body: Any) -> Any:
        self.send(body)
        return self.receive(body.__api_key__, body.__version__)

    def at_eof(self, seconds: float = 5) -> bool:
        """True when the broker closes the connection within ``seconds``."""
        self.sock.settimeout(seconds)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            buf += chunk
        return bytes(buf)


def request(api_key: int, version: int, **fields: Any) -> Any:
    """The kio request of ``api_key`` at ``version`` with ``fields``."""
    return _message_class(request_module(api_key, version), "Request")(**fields)


def entity(api_key: int, version: int, class_name: str, /, **fields: Any) -> Any:
    """A nested request entity (``CreatableTopic``...) of ``api_key`` at ``version``."""
    return getattr(request_module(api_key, version), class_name)(**fields)
